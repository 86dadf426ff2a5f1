#pragma once
// ReadGuard: bounds a statement's read phase from outside libpq. PQconsumeInput reads until the
// socket runs dry, so a peer that streams a huge row (or any answer faster than it is read) keeps
// libpq inside one call past every deadline while its buffer grows to the declared size. While a
// ReadGuard lives, one shared watcher thread checks its socket every few milliseconds; when the
// deadline passes or more than `max_bytes` arrived (TCP_INFO's byte count), it swaps the socket
// for one that reads end-of-file (dup2), which ends libpq's read and closes the connection to the
// peer. The connection is unusable after a trip. Thread-safe; the watcher sleeps while nothing is
// guarded.
#include <chrono>
#include <cstddef>
#include <memory>

namespace pgvigil {

class ReadGuard {
 public:
  enum class Trip { kNone, kDeadline, kTooLarge };

  ReadGuard(int fd, std::chrono::steady_clock::time_point deadline, std::size_t max_bytes);
  ~ReadGuard();  // stops watching; never trips after it returns
  ReadGuard(const ReadGuard&) = delete;
  ReadGuard& operator=(const ReadGuard&) = delete;

  Trip tripped() const;
  std::size_t received() const;  // bytes the socket received while guarded (TCP only, else 0)

  struct Watch;  // shared with the watcher thread

 private:
  std::shared_ptr<Watch> watch_;
};

}  // namespace pgvigil
