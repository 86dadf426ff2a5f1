#pragma once
// Which databases the database-size collector measures in a run, and in what batches: the pure
// part of collectors/database_size.cpp. pg_database_size walks every file of a database, which
// is the most expensive statistic there is (~1.5 ms per database with 50 tables), while a size
// changes only when something writes. So a database is measured again only when its write
// activity in pg_stat_database moved since it was last measured (rows inserted, updated or
// deleted — catalog changes such as CREATE, TRUNCATE or VACUUM's truncation count too — or temp
// bytes, or a stats reset), and every one of them on a full pass every `full_every` runs.
// Thread-safe (pure).
#include <cstddef>
#include <map>
#include <string>
#include <vector>

namespace pgvigil {

// One row of the cheap first statement: a database and its write activity now.
struct DatabaseActivity {
  std::string oid;
  std::string datname;
  bool sizable = true;  // we may size it (CONNECT privilege or pg_read_all_stats)
  double writes = 0;    // tup_inserted + tup_updated + tup_deleted + temp_bytes
  double stats_reset = 0;
};

// What we know of a database we measured.
struct SizedDatabase {
  std::string datname;
  double size_bytes = 0;
  double writes = 0;  // its activity when measured
  double stats_reset = 0;
};

// The oids to measure now, in `activity` order: sizable databases that are new, renamed, written
// to or reset since they were measured — or all sizable ones when `full_pass`.
std::vector<std::string> DatabasesToSize(const std::vector<DatabaseActivity>& activity,
                                         const std::map<std::string, SizedDatabase>& known,
                                         bool full_pass);

// `oids` cut into batches of at most `batch` (>= 1), each one short statement.
std::vector<std::vector<std::string>> SizeBatches(const std::vector<std::string>& oids,
                                                  std::size_t batch);

}  // namespace pgvigil
