#include "db/cancel_request.hpp"

#include <atomic>
#include <thread>

namespace pgvigil {
namespace {
std::atomic<bool> g_in_flight{false};
}  // namespace

bool SendCancelInBackground(PGconn* conn) {
  if (conn == nullptr || PQstatus(conn) != CONNECTION_OK) return false;
  PGcancel* cancel = PQgetCancel(conn);
  if (cancel == nullptr) return false;
  if (g_in_flight.exchange(true)) {
    PQfreeCancel(cancel);
    return false;
  }
  try {
    std::thread([cancel] {
      char error[256];
      PQcancel(cancel, error, sizeof error);  // best effort: the caller already gave up
      PQfreeCancel(cancel);
      g_in_flight = false;
    }).detach();
  } catch (...) {  // no thread to be had: no cancel, as before
    PQfreeCancel(cancel);
    g_in_flight = false;
    return false;
  }
  return true;
}

}  // namespace pgvigil
