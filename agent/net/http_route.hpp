#pragma once
// HttpRoute: one endpoint a feature serves (method, exact path, handler). Features return their
// routes; the composition root hands them to the HTTP server, which knows none of them.
// A handler runs on an HTTP worker: it reads published state and never blocks on the database.
#include <httplib.h>

#include <functional>
#include <string>

namespace pgvigil {

struct HttpRoute {
  std::string method;                                                        // "GET" or "POST"
  std::string path;                                                          // exact path
  std::function<void(const httplib::Request&, httplib::Response&)> handler;  // must not block
};

}  // namespace pgvigil
