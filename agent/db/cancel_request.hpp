#pragma once
// SendCancelInBackground: asks a server to cancel the statement a session is running (libpq's
// cancel request, on a new socket). PQcancel blocks with no timeout of its own, and a frozen
// server would hold its caller, so it runs on a detached helper thread; at most one is in flight
// per process (a second request while one is pending is dropped), which bounds what a frozen
// server can hold to one thread. Thread-safe.
#include <libpq-fe.h>

namespace pgvigil {

// Sends the cancel request for `conn`'s session; false when none was sent (no session, or one
// already in flight). Only reads `conn`: the caller may close it at once.
bool SendCancelInBackground(PGconn* conn);

}  // namespace pgvigil
