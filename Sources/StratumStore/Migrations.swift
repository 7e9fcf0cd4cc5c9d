import GRDB

/// The store's schema, as migrations with string ids. A shipped migration is
/// never edited: a change is a new migration.
enum Migrations {
    static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("2026-11-27-profiles-identifiers-events") { db in
            try db.execute(sql: """
                CREATE TABLE profiles (
                    tenant_id TEXT NOT NULL,
                    id TEXT NOT NULL,
                    external_id TEXT,
                    first_seen_at INTEGER NOT NULL,
                    last_seen_at INTEGER NOT NULL CHECK (last_seen_at >= first_seen_at),
                    profile_data TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(profile_data)),
                    computed_traits TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(computed_traits)),
                    lifecycle_stage TEXT NOT NULL CHECK (lifecycle_stage IN ('anonymous', 'known', 'customer')),
                    total_events INTEGER NOT NULL DEFAULT 0 CHECK (total_events >= 0),
                    total_sessions INTEGER NOT NULL DEFAULT 0 CHECK (total_sessions >= 0),
                    total_purchases INTEGER NOT NULL DEFAULT 0 CHECK (total_purchases >= 0),
                    total_revenue TEXT NOT NULL DEFAULT '0',
                    canonical_type TEXT,
                    canonical_hash TEXT,
                    last_session_id TEXT,
                    last_event_at INTEGER,
                    created_at INTEGER NOT NULL,
                    updated_at INTEGER NOT NULL,
                    PRIMARY KEY (tenant_id, id)
                ) WITHOUT ROWID;

                CREATE TABLE profile_identifiers (
                    tenant_id TEXT NOT NULL,
                    identifier_type TEXT NOT NULL,
                    identifier_hash TEXT NOT NULL CHECK (length(identifier_hash) = 64),
                    id TEXT NOT NULL,
                    profile_id TEXT NOT NULL,
                    identifier_value TEXT,
                    is_primary INTEGER NOT NULL CHECK (is_primary IN (0, 1)),
                    confidence_score REAL NOT NULL CHECK (confidence_score BETWEEN 0 AND 1),
                    verified_at INTEGER,
                    created_at INTEGER NOT NULL,
                    PRIMARY KEY (tenant_id, identifier_type, identifier_hash),
                    UNIQUE (tenant_id, id),
                    FOREIGN KEY (tenant_id, profile_id) REFERENCES profiles (tenant_id, id) ON DELETE CASCADE
                ) WITHOUT ROWID;
                CREATE INDEX profile_identifiers_by_profile ON profile_identifiers (tenant_id, profile_id);

                CREATE TABLE events (
                    seq INTEGER PRIMARY KEY,
                    tenant_id TEXT NOT NULL,
                    id TEXT NOT NULL,
                    profile_id TEXT,
                    source_id TEXT,
                    type TEXT NOT NULL CHECK (type IN ('track', 'identify', 'page', 'screen', 'group', 'alias')),
                    event_name TEXT NOT NULL,
                    event_time INTEGER NOT NULL,
                    received_at INTEGER NOT NULL,
                    idempotency_key TEXT NOT NULL,
                    properties TEXT NOT NULL,
                    context TEXT NOT NULL,
                    identifiers TEXT NOT NULL,
                    processed INTEGER NOT NULL CHECK (processed IN (0, 1)),
                    emq_score REAL CHECK (emq_score BETWEEN 0 AND 1),
                    UNIQUE (tenant_id, idempotency_key),
                    FOREIGN KEY (tenant_id, profile_id) REFERENCES profiles (tenant_id, id)
                );
                CREATE INDEX events_by_profile ON events (tenant_id, profile_id, event_time);

                CREATE TABLE profile_aliases (
                    tenant_id TEXT NOT NULL,
                    absorbed_id TEXT NOT NULL,
                    survivor_id TEXT NOT NULL,
                    merged_at INTEGER NOT NULL,
                    PRIMARY KEY (tenant_id, absorbed_id),
                    CHECK (absorbed_id <> survivor_id)
                ) WITHOUT ROWID;
                CREATE INDEX profile_aliases_by_survivor ON profile_aliases (tenant_id, survivor_id);

                CREATE TABLE profile_merges (
                    tenant_id TEXT NOT NULL,
                    id TEXT NOT NULL,
                    survivor_id TEXT NOT NULL,
                    absorbed_id TEXT NOT NULL,
                    merged_at INTEGER NOT NULL,
                    reason TEXT NOT NULL,
                    identifiers_moved INTEGER NOT NULL,
                    events_moved INTEGER NOT NULL,
                    PRIMARY KEY (tenant_id, id)
                );
                CREATE INDEX profile_merges_by_survivor ON profile_merges (tenant_id, survivor_id);

                CREATE TABLE identity_conflicts (
                    tenant_id TEXT NOT NULL,
                    id TEXT NOT NULL,
                    profile_id TEXT NOT NULL,
                    other_profile_id TEXT,
                    identifier_type TEXT NOT NULL,
                    identifier_hash TEXT NOT NULL,
                    reason TEXT NOT NULL,
                    event_id TEXT NOT NULL,
                    occurred_at INTEGER NOT NULL,
                    PRIMARY KEY (tenant_id, id)
                );
                CREATE INDEX identity_conflicts_by_profile ON identity_conflicts (tenant_id, profile_id);

                CREATE TABLE consents (
                    seq INTEGER PRIMARY KEY,
                    tenant_id TEXT NOT NULL,
                    id TEXT NOT NULL,
                    profile_id TEXT NOT NULL,
                    consent_type TEXT NOT NULL,
                    granted INTEGER NOT NULL CHECK (granted IN (0, 1)),
                    granted_at INTEGER,
                    revoked_at INTEGER,
                    source TEXT NOT NULL,
                    ip_address TEXT,
                    consent_text TEXT,
                    consent_version TEXT,
                    recorded_at INTEGER NOT NULL,
                    UNIQUE (tenant_id, id),
                    FOREIGN KEY (tenant_id, profile_id) REFERENCES profiles (tenant_id, id) ON DELETE CASCADE
                );
                CREATE INDEX consents_by_profile ON consents (tenant_id, profile_id, consent_type);
                """)
        }
        migrator.registerMigration("2026-11-27-segments-and-runs") { db in
            try db.execute(sql: """
                CREATE TABLE segment_memberships (
                    tenant_id TEXT NOT NULL,
                    segment TEXT NOT NULL,
                    profile_id TEXT NOT NULL,
                    entered_at INTEGER NOT NULL,
                    PRIMARY KEY (tenant_id, segment, profile_id)
                ) WITHOUT ROWID;
                CREATE INDEX segment_memberships_by_profile ON segment_memberships (tenant_id, profile_id);

                CREATE TABLE segment_changes (
                    seq INTEGER PRIMARY KEY,
                    tenant_id TEXT NOT NULL,
                    segment TEXT NOT NULL,
                    profile_id TEXT NOT NULL,
                    change TEXT NOT NULL CHECK (change IN ('entered', 'exited')),
                    changed_at INTEGER NOT NULL,
                    run_id TEXT NOT NULL
                );
                CREATE INDEX segment_changes_by_segment ON segment_changes (tenant_id, segment, seq);

                CREATE TABLE segment_state (
                    tenant_id TEXT NOT NULL,
                    segment TEXT NOT NULL,
                    status TEXT NOT NULL CHECK (status IN ('draft', 'computing', 'active', 'stale')),
                    profile_count INTEGER NOT NULL DEFAULT 0 CHECK (profile_count >= 0),
                    last_computed_at INTEGER,
                    computation_duration_ms INTEGER,
                    next_refresh_at INTEGER,
                    PRIMARY KEY (tenant_id, segment)
                ) WITHOUT ROWID;

                CREATE TABLE evaluation_runs (
                    id TEXT NOT NULL PRIMARY KEY,
                    tenant_id TEXT NOT NULL,
                    kind TEXT NOT NULL CHECK (kind IN ('Trait', 'RFM', 'Segment')),
                    name TEXT NOT NULL,
                    as_of INTEGER NOT NULL,
                    started_at INTEGER NOT NULL,
                    finished_at INTEGER,
                    status TEXT NOT NULL CHECK (status IN ('running', 'succeeded', 'failed')),
                    profiles INTEGER,
                    entered INTEGER,
                    exited INTEGER,
                    error TEXT
                );
                CREATE INDEX evaluation_runs_by_definition ON evaluation_runs (tenant_id, kind, name, started_at);
                """)
        }
        migrator.registerMigration("2026-11-27-events-by-name") { db in
            // Traits, RFM and event conditions read one event name in a time window.
            try db.execute(sql: "CREATE INDEX events_by_name ON events (tenant_id, event_name, event_time)")
        }
        migrator.registerMigration("2026-11-27-webhook-deliveries") { db in
            try db.execute(sql: """
                CREATE TABLE webhook_deliveries (
                    seq INTEGER PRIMARY KEY,
                    id TEXT NOT NULL UNIQUE,
                    tenant_id TEXT NOT NULL,
                    webhook TEXT NOT NULL,
                    event_type TEXT NOT NULL,
                    payload TEXT NOT NULL CHECK (json_valid(payload)),
                    created_at INTEGER NOT NULL,
                    next_attempt_at INTEGER NOT NULL,
                    attempts INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
                    status TEXT NOT NULL CHECK (status IN ('pending', 'delivered', 'failed', 'dead', 'disabled')),
                    last_status INTEGER,
                    last_error TEXT,
                    delivered_at INTEGER
                );
                CREATE INDEX webhook_deliveries_due ON webhook_deliveries (status, next_attempt_at);
                """)
        }
        migrator.registerMigration("2026-11-27-events-by-name-covering") { db in
            // Traits, RFM recency/frequency and event conditions without property
            // filters read only these columns: with them in the index they never
            // visit the table rows (a random read each, about 3 µs).
            try db.execute(sql: """
                DROP INDEX events_by_name;
                CREATE INDEX events_by_name ON events (tenant_id, event_name, event_time, profile_id, source_id);
                """)
        }
        migrator.registerMigration("2026-11-27-consents-confirmed-at") { db in
            // The latest time a record's value was sent again (a repeat is not a new
            // record): a record arriving late, before it, must not outlast it.
            try db.execute(sql: "ALTER TABLE consents ADD COLUMN confirmed_at INTEGER")
        }
        migrator.registerMigration("2026-11-27-evaluation-runs-owner") { db in
            // The process a run belongs to (RunOwner), so a run left `running` by a
            // process that died is told from one another process is still doing.
            try db.execute(sql: "ALTER TABLE evaluation_runs ADD COLUMN owner TEXT")
        }
        migrator.registerMigration("2026-11-27-evaluation-runs-running") { db in
            // The daemon looks for runs left running once a minute; the table only grows.
            try db.execute(sql: "CREATE INDEX evaluation_runs_running ON evaluation_runs (status) WHERE status = 'running'")
        }
        return migrator
    }
}
