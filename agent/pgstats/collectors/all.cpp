// The one list of database statistics collectors, in run order. A new collector is one file in
// this folder defining Make<Name>Collector, plus one line here.
#include "pgstats/collector.hpp"

#define PGVIGIL_COLLECTORS(X) \
  X(StaticInfo)               \
  X(Postmaster)               \
  X(StatDatabase)             \
  X(StatActivity)             \
  X(Locks)                    \
  X(DatabaseSize)             \
  X(Settings)                 \
  X(Bgwriter)                 \
  X(Replication)              \
  X(NeonLfc)

namespace pgvigil {

#define PGVIGIL_DECLARE(name) \
  std::unique_ptr<Collector> Make##name##Collector(prometheus::Registry&);
PGVIGIL_COLLECTORS(PGVIGIL_DECLARE)
#undef PGVIGIL_DECLARE

std::vector<CollectorFactory> AllCollectors() {
#define PGVIGIL_FACTORY(name) &Make##name##Collector,
  return {PGVIGIL_COLLECTORS(PGVIGIL_FACTORY)};
#undef PGVIGIL_FACTORY
}

}  // namespace pgvigil
