#pragma once
// The composition root: builds every component from Settings in start order, runs until
// SIGTERM/SIGINT, then shuts down in reverse order within http.shutdown_timeout.
#include "config/settings.hpp"

namespace pgvigil {

// Blocks SIGTERM/SIGINT/SIGHUP in the calling thread (before any thread starts) so that every
// thread inherits the mask and main can sigwait for them.
void BlockShutdownSignals();

// Runs the agent; returns the process exit code (0 after a graceful shutdown, 1 when a
// listener cannot be opened).
int RunAgent(const Settings& settings);

}  // namespace pgvigil
