#pragma once
// UrlParams: a test's database URL -> ConnParams, as the agent parses it; throws on a URL the
// test itself got wrong. Header-only: the test binary links the config module already.
#include <stdexcept>
#include <string>

#include "config/database_url.hpp"

namespace pgvigil::test {

inline ConnParams UrlParams(const std::string& url) {
  ParsedUrl parsed = ParseDatabaseUrl(url);
  if (!parsed) throw std::runtime_error("bad test URL: " + parsed.error().message);
  return *parsed;
}

}  // namespace pgvigil::test
