#pragma once
// GET /traces: the kept spans of a SpanBuffer as JSON (?min_duration=, ?errors=, ?limit=; 400
// with the reason for a bad parameter). The routes read `buffer`, which must outlive them.
#include <vector>

#include "net/http_route.hpp"
#include "tracing/span_buffer.hpp"

namespace pgvigil {

std::vector<HttpRoute> TraceRoutes(const SpanBuffer& buffer);

}  // namespace pgvigil
