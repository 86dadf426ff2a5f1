#include "sampling/query_routes.hpp"

#include <chrono>
#include <string>

namespace pgvigil {

std::vector<HttpRoute> QueryRoutes(const QuerySampling& sampling) {
  auto queries = [&sampling](const httplib::Request& req, httplib::Response& res) {
    const auto now = std::chrono::system_clock::now();
    std::string err;
    auto q = sampling.ParseRequest(req.params, now, &err);
    if (!q) {
      res.status = 400;
      res.set_content(err + "\n", "text/plain; charset=utf-8");
      return;
    }
    res.set_header("Cache-Control", "no-store");
    res.set_content(sampling.QueriesJson(*q, now), "application/json");
  };
  return {{"GET", "/queries", queries}};
}

}  // namespace pgvigil
