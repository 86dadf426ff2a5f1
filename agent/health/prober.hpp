#pragma once
// Prober: one probe cycle — take a connection from the pool (connecting if needed, under the
// connect deadline) and run the probe query under the probe deadline. Failures come back as
// values inside the ProbeResult. Runs on the scheduler thread; not thread-safe.
#include <string>

#include "config/settings.hpp"
#include "db/pool.hpp"
#include "health/health_model.hpp"

namespace pgvigil {

// The probe statement: pooler-safe, tagged so pgvigil's own sessions are recognisable.
inline constexpr const char* kProbeSql = "/* pgvigil */ SELECT 1";

// `sql` defaults to kProbeSql (tracing passes a version with a traceparent comment).
ProbeResult RunProbe(Pool& pool, const ProbeSettings& settings, const std::string& sql = kProbeSql);

}  // namespace pgvigil
