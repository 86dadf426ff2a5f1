#pragma once
// AbortSignal: a one-way latch that cuts every database wait short at shutdown. Connections
// opened with it poll its descriptor beside their socket, so a connect to a frozen server or a
// query on it ends at once instead of at its deadline; host lookups stop through token().
// Owned by the scheduler, triggered by its Stop. Thread-safe.
#include <atomic>
#include <stop_token>

namespace pgvigil {

class AbortSignal {
 public:
  AbortSignal();
  ~AbortSignal();
  AbortSignal(const AbortSignal&) = delete;
  AbortSignal& operator=(const AbortSignal&) = delete;

  void Trigger();  // idempotent
  bool triggered() const { return source_.stop_requested(); }
  int fd() const { return fd_; }  // readable once triggered; -1 if the kernel had none to give
  std::stop_token token() const { return source_.get_token(); }

 private:
  std::stop_source source_;
  int fd_ = -1;
};

}  // namespace pgvigil
