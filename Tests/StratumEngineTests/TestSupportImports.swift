@_exported import StratumTestSupport
