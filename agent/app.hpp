#pragma once
// The composition root: builds every component from Settings in start order (Agent), runs
// until SIGTERM/SIGINT, then shuts down in reverse order within http.shutdown_timeout.
#include <memory>
#include <string>

#include "config/settings.hpp"

namespace pgvigil {

// The running agent in-process: pool, scheduler, samplers, tracing, Neon watch and the HTTP
// server, wired together. Start binds the listener and starts the scheduler thread; Shutdown
// (also run by the destructor) fails readiness, stops the scheduler, flushes the exporter and
// stops the HTTP server. `settings` must outlive the Agent. Start/Shutdown from one thread.
class Agent {
 public:
  explicit Agent(const Settings& settings);
  ~Agent();
  Agent(const Agent&) = delete;
  Agent& operator=(const Agent&) = delete;

  bool Start(std::string* error);  // false (with the reason) when the listener cannot open
  void Shutdown();                 // bounded by the database deadlines; idempotent
  int port() const;                // the HTTP port actually bound

 private:
  struct Parts;
  std::unique_ptr<Parts> parts_;
  bool started_ = false;
};

// Blocks SIGTERM/SIGINT/SIGHUP in the calling thread (before any thread starts) so that every
// thread inherits the mask and main can sigwait for them.
void BlockShutdownSignals();

// Runs the agent; returns the process exit code (0 after a graceful shutdown, 1 when a
// listener cannot be opened).
int RunAgent(const Settings& settings);

}  // namespace pgvigil
