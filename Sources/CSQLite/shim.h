#include <sqlite3.h>

// sqlite3_config is variadic: Swift cannot call it, so each setting used gets
// a typed wrapper. Settings take effect only before SQLite initializes (the
// first connection opened in the process); later they return SQLITE_MISUSE.

// Without memory statistics, SQLite's allocations take no process-wide mutex:
// with lookaside omitted (as Debian builds it), every allocation otherwise
// locks it, and connections on different threads contend.
static inline int stratum_sqlite_disable_memory_statistics(void) {
    return sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
}
