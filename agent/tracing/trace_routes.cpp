#include "tracing/trace_routes.hpp"

#include <algorithm>
#include <string>

namespace pgvigil {

std::vector<HttpRoute> TraceRoutes(const SpanBuffer& buffer) {
  auto traces = [&buffer](const httplib::Request& req, httplib::Response& res) {
    std::string err;
    auto q = ParseTracesQuery(req.params, &err);
    if (!q) {
      res.status = 400;
      res.set_content(err + "\n", "text/plain");
      return;
    }
    res.set_header("Cache-Control", "no-store");
    res.set_content(
        TracesJson(buffer, q->min_duration, q->errors_only, std::min(q->limit, buffer.capacity())),
        "application/json");
  };
  return {{"GET", "/traces", traces}};
}

}  // namespace pgvigil
