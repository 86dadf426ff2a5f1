#pragma once
// Long-running-query spans: each long-running query seen in one activity sample becomes an
// INTERNAL child of the sampler's span, from its query_start to the moment it was seen. It is an
// observation of somebody else's query, not a call pgvigil made (a CLIENT span would draw calls
// that never happened in service graphs, and db.* attributes would make backends count it as
// one). When the query's text carries a sqlcommenter traceparent, the span links to that trace.
// Runs on the thread that ran the sample (the scheduler's); no state of its own.
#include <chrono>

#include "config/settings.hpp"
#include "sampling/activity_sampler.hpp"

namespace pgvigil {

class Tracer;
class ScopedSpan;

// Spans for the samples of `activity` taken at `sampled_at`; nothing when `sampler` is inactive.
// Query text goes into spans only in obfuscated mode, whatever /queries shows.
void TraceLongRunningQueries(Tracer& tracer, const ScopedSpan& sampler,
                             const ActivitySampler& activity,
                             std::chrono::system_clock::time_point sampled_at,
                             QueryTextMode query_text);

}  // namespace pgvigil
