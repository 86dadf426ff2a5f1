#include "db/pool.hpp"

#include <algorithm>
#include <exception>
#include <random>
#include <utility>

namespace pgvigil {
namespace {

// Spreads reconnects of pods started together; single-threaded use, so one generator.
double JitterFactor() {
  static thread_local std::mt19937_64 rng{std::random_device{}()};
  return std::uniform_real_distribution<double>(0.9, 1.0)(rng);
}

std::chrono::steady_clock::time_point RealNow() { return std::chrono::steady_clock::now(); }

}  // namespace

struct Pool::Slot {
  std::optional<Connection> conn;
  bool busy = false;
  bool close_on_release = false;
  std::string close_reason;
  SteadyTime opened_at{};
  SteadyTime expires_at{};
  SteadyTime last_used{};
};

Pool::Pool(PoolSettings settings, ConnParams params, Millis connect_timeout, Clock clock,
           const AbortSignal* abort)
    : settings_(std::move(settings)),
      params_(std::move(params)),
      connect_timeout_(connect_timeout),
      clock_(std::move(clock)),
      abort_(abort),
      backoff_(settings_.backoff_initial, settings_.backoff_max) {
  settings_.size = std::clamp(settings_.size, 1, 4);
  slots_.resize(static_cast<size_t>(settings_.size));
  stats_.max_size = settings_.size;
}

Pool::~Pool() { CloseAll(); }

SteadyTime Pool::Now() const { return clock_ ? clock_() : RealNow(); }

void Pool::Close(Slot& slot, const std::string& reason) {
  if (!slot.conn) return;
  stats_.exec_seconds_total += std::chrono::duration<double>(slot.conn->exec_time()).count();
  closed_statements_.Add(slot.conn->statements());
  slot.conn.reset();
  slot.busy = false;
  slot.close_on_release = false;
  ++stats_.closed_total[reason];
}

bool Pool::TakeIdle(SteadyTime op_deadline, Lease& out) {
  const SteadyTime now = Now();
  for (size_t i = 0; i < slots_.size(); ++i) {
    Slot& s = slots_[i];
    if (!s.conn || s.busy) continue;
    if (s.conn->broken()) {
      Close(s, "broken");
      continue;
    }
    if (now >= s.expires_at) {
      Close(s, "lifetime");
      continue;
    }
    if (now - s.last_used >= settings_.idle_timeout) {
      Close(s, "idle");
      continue;
    }
    if (now - s.last_used >= settings_.validate_after) {
      // An empty query is the cheapest round trip and works through PgBouncer.
      auto v = s.conn->Exec("", op_deadline);
      if (!v) {
        Close(s, "broken");
        continue;
      }
    }
    s.busy = true;
    s.last_used = now;
    out.pool_ = this;
    out.uncaught_ = std::uncaught_exceptions();
    out.conn_ = &*s.conn;
    out.slot_ = static_cast<int>(i);
    return true;
  }
  return false;
}

std::optional<Pool::Lease> Pool::AcquireIdle(SteadyTime deadline) {
  Lease lease;
  if (!TakeIdle(std::min(deadline, RealNow() + connect_timeout_), lease)) return std::nullopt;
  return lease;
}

DbResult<Pool::Lease> Pool::Acquire(SteadyTime deadline, std::optional<Millis> connect_timeout) {
  SteadyTime now = Now();
  // Deadlines are real steady_clock times (Connection polls against them); the injected clock
  // only drives lifetime, idle, validation and backoff bookkeeping.
  SteadyTime op_deadline =
      std::min(deadline, RealNow() + connect_timeout.value_or(connect_timeout_));

  if (Lease idle; TakeIdle(op_deadline, idle)) return idle;

  auto free_slot =
      std::find_if(slots_.begin(), slots_.end(), [](const Slot& s) { return !s.conn; });
  if (free_slot == slots_.end()) {
    return tl::make_unexpected(DbError{ErrorKind::kTooManyConnections, "",
                                       "pgvigil's connection pool is exhausted: all " +
                                           std::to_string(slots_.size()) +
                                           " connections are checked out"});
  }
  if (last_connect_error_ && now < next_connect_allowed_) {
    return tl::make_unexpected(*last_connect_error_);  // backing off: no network
  }

  auto started = RealNow();
  auto opened = Connection::Open(params_, op_deadline, abort_);
  auto took = RealNow() - started;
  stats_.last_connect_seconds = std::chrono::duration<double>(took).count();
  if (!opened) {
    DbError err = opened.error();
    ++stats_.connect_errors_total[std::string(ErrorKindName(err.kind))];
    stats_.last_connect_error = err.message;
    last_connect_error_ = err;
    // A misconfiguration will not fix itself: retry at a slow, steady pace instead of a storm.
    Millis wait = err.Misconfiguration() ? settings_.misconfigured_backoff
                                         : std::max(backoff_.Next(), Millis(1));
    next_connect_allowed_ = now + wait;
    return tl::make_unexpected(std::move(err));
  }
  backoff_.Reset();
  last_connect_error_.reset();
  next_connect_allowed_ = {};
  ++stats_.opened_total;

  Slot& s = *free_slot;
  s.conn.emplace(std::move(*opened));
  s.busy = true;
  s.close_on_release = false;
  s.opened_at = now;
  s.last_used = now;
  auto lifetime =
      std::chrono::duration_cast<SteadyTime::duration>(std::chrono::duration<double, std::milli>(
          static_cast<double>(settings_.max_lifetime.count()) * JitterFactor()));
  s.expires_at = now + lifetime;
  Lease lease;
  lease.pool_ = this;
  lease.uncaught_ = std::uncaught_exceptions();
  lease.conn_ = &*s.conn;
  lease.slot_ = static_cast<int>(free_slot - slots_.begin());
  lease.info_.new_connection = true;
  lease.info_.connect_duration = std::chrono::duration_cast<std::chrono::nanoseconds>(took);
  return lease;
}

Pool::Lease& Pool::Lease::operator=(Lease&& other) noexcept {
  if (this != &other) {
    Return();
    pool_ = std::exchange(other.pool_, nullptr);
    conn_ = std::exchange(other.conn_, nullptr);
    slot_ = std::exchange(other.slot_, -1);
    uncaught_ = other.uncaught_;
    info_ = other.info_;
  }
  return *this;
}

void Pool::Lease::Return() {
  Pool* pool = std::exchange(pool_, nullptr);
  if (!pool || !conn_) return;
  if (std::uncaught_exceptions() > uncaught_) conn_->MarkBroken();
  pool->GiveBack(slot_, conn_);
}

void Pool::GiveBack(int slot, const Connection* conn) {
  if (slot < 0 || slot >= static_cast<int>(slots_.size())) return;
  Slot& s = slots_[static_cast<size_t>(slot)];
  if (!s.conn || !s.busy || &*s.conn != conn) return;
  SteadyTime now = Now();
  s.busy = false;
  s.last_used = now;
  if (s.close_on_release) {
    Close(s, s.close_reason);
  } else if (s.conn->broken()) {
    Close(s, "broken");
  } else if (now >= s.expires_at) {
    Close(s, "lifetime");
  }
}

void Pool::Maintain() {
  SteadyTime now = Now();
  for (Slot& s : slots_) {
    if (!s.conn || s.busy) continue;
    if (s.conn->broken()) {
      Close(s, "broken");
    } else if (now >= s.expires_at) {
      Close(s, "lifetime");
    } else if (now - s.last_used >= settings_.idle_timeout) {
      Close(s, "idle");
    }
  }
}

void Pool::CloseAll(const std::string& reason) {
  for (Slot& s : slots_) {
    if (!s.conn) continue;
    if (s.busy) {  // a lease is out: close when it comes back
      s.close_on_release = true;
      s.close_reason = reason;
    } else {
      Close(s, reason);
    }
  }
  backoff_.Reset();
  last_connect_error_.reset();
  next_connect_allowed_ = {};
}

SteadyTime Pool::NextConnectAllowed() const {
  SteadyTime now = Now();
  return (last_connect_error_ && now < next_connect_allowed_) ? next_connect_allowed_ : now;
}

PoolStats Pool::Stats() const {
  PoolStats st = stats_;
  st.max_size = static_cast<int>(slots_.size());
  st.open = st.idle = st.busy = 0;
  for (const Slot& s : slots_) {
    if (!s.conn) continue;
    ++st.open;
    (s.busy ? st.busy : st.idle)++;
    st.exec_seconds_total += std::chrono::duration<double>(s.conn->exec_time()).count();
  }
  st.waiting = 0;
  st.backing_off = last_connect_error_.has_value() && Now() < next_connect_allowed_;
  return st;
}

StatementTally Pool::Statements() const {
  StatementTally t = closed_statements_;
  for (const Slot& s : slots_) {
    if (s.conn) t.Add(s.conn->statements());
  }
  return t;
}

}  // namespace pgvigil
