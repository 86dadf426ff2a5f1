#pragma once
// RunTraced: runs one job's work on `conn` inside an INTERNAL span `name` (inert without a
// tracer) whose traceparent tags every statement it sends (sqlcommenter). `run(span)` returns
// whether it worked; the span says so. Should it throw, the span records the error, the comment
// is cleared and the exception goes on to the scheduler's catch-all.
#include <string>

#include "db/connection.hpp"
#include "tracing/span.hpp"
#include "tracing/tracer.hpp"

namespace pgvigil {

template <typename Fn>
bool RunTraced(Tracer* tracer, Connection& conn, const char* name, Fn&& run) {
  ScopedSpan span;
  if (tracer) {
    span = tracer->StartSpan(name, SpanKind::kInternal);
    conn.SetStatementComment("/*traceparent='" + span.Traceparent() + "'*/");
  }
  bool ok = false;
  try {
    ok = run(static_cast<const ScopedSpan&>(span));
  } catch (...) {
    conn.SetStatementComment("");
    span.SetError("collector_error", std::string(name) + " failed");
    throw;
  }
  conn.SetStatementComment("");
  if (ok) {
    span.SetOk();
  } else {
    span.SetError("collector_error", std::string(name) + " failed");
  }
  return ok;
}

}  // namespace pgvigil
