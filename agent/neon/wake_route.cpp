#include "neon/wake_route.hpp"

#include <utility>

namespace pgvigil {

HttpRoute WakeRoute(std::function<void()> request_wake) {
  return {"POST", "/wake",
          [wake = std::move(request_wake)](const httplib::Request&, httplib::Response& res) {
            wake();
            res.status = 202;
            res.set_content("pgvigil will look at the database now\n", "text/plain");
          }};
}

}  // namespace pgvigil
