#pragma once
// POST /wake: asks the agent to look at the database now (e.g. after a deploy, to end a
// suspended-compute wait early); answers 202 at once, `request_wake` must not block.
#include <functional>

#include "net/http_route.hpp"

namespace pgvigil {

HttpRoute WakeRoute(std::function<void()> request_wake);

}  // namespace pgvigil
