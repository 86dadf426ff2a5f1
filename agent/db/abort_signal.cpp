#include "db/abort_signal.hpp"

#include <sys/eventfd.h>
#include <unistd.h>

#include <cstdint>

namespace pgvigil {

AbortSignal::AbortSignal() : fd_(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) {}

AbortSignal::~AbortSignal() {
  if (fd_ >= 0) ::close(fd_);
}

void AbortSignal::Trigger() {
  if (!source_.request_stop()) return;
  if (fd_ >= 0) {
    const uint64_t one = 1;  // never read: the descriptor stays readable
    [[maybe_unused]] auto n = ::write(fd_, &one, sizeof one);
  }
}

}  // namespace pgvigil
