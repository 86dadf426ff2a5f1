#pragma once
// GET /queries: the statement history of QuerySampling as JSON (?window=, ?since=, ?top=, ...;
// 400 with the reason for a bad parameter). The routes read `sampling`, which must outlive them.
#include <vector>

#include "net/http_route.hpp"
#include "sampling/query_sampling.hpp"

namespace pgvigil {

std::vector<HttpRoute> QueryRoutes(const QuerySampling& sampling);

}  // namespace pgvigil
