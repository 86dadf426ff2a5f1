#pragma once
// The probe statement. The scheduler runs it every probe.interval under probe.timeout on a pool
// connection (see scheduler.cpp); the result feeds the HealthModel.

namespace pgvigil {

// Pooler-safe (no session state) and tagged so pgvigil's own sessions are recognisable.
inline constexpr const char* kProbeSql = "/* pgvigil */ SELECT 1";

}  // namespace pgvigil
