#include "support/neon_sim.hpp"

#include <arpa/inet.h>
#include <httplib.h>
#include <libpq-fe.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <stdexcept>

namespace pgvigil::test {
namespace {

using Clock = std::chrono::steady_clock;
using Wall = std::chrono::system_clock;
using namespace std::chrono_literals;

constexpr std::uint32_t kSslRequest = 80877103;
constexpr std::uint32_t kGssEncRequest = 80877104;
constexpr std::uint32_t kCancelRequest = 80877102;
constexpr std::uint32_t kProtocol3 = 196608;

bool ReadFull(int fd, void* buf, std::size_t n, std::chrono::milliseconds timeout) {
  auto deadline = Clock::now() + timeout;
  auto* p = static_cast<char*>(buf);
  while (n > 0) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    if (left.count() <= 0) return false;
    pollfd pfd{fd, POLLIN, 0};
    if (poll(&pfd, 1, static_cast<int>(left.count())) <= 0) return false;
    ssize_t r = recv(fd, p, n, 0);
    if (r <= 0) return false;
    p += r;
    n -= static_cast<std::size_t>(r);
  }
  return true;
}

bool WriteFull(int fd, const void* buf, std::size_t n) {
  const auto* p = static_cast<const char*>(buf);
  while (n > 0) {
    ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return false;
    p += w;
    n -= static_cast<std::size_t>(w);
  }
  return true;
}
bool WriteFull(int fd, const std::string& s) { return WriteFull(fd, s.data(), s.size()); }

void PutU32(std::string& out, std::uint32_t v) {
  v = htonl(v);
  out.append(reinterpret_cast<const char*>(&v), 4);
}

std::string ErrorResponse(const std::string& sqlstate, const std::string& message) {
  std::string fields;
  auto add = [&fields](char code, const std::string& value) {
    fields.push_back(code);
    fields += value;
    fields.push_back('\0');
  };
  add('S', "FATAL");
  add('V', "FATAL");
  add('C', sqlstate);
  add('M', message);
  fields.push_back('\0');
  std::string msg = "E";
  PutU32(msg, static_cast<std::uint32_t>(fields.size() + 4));
  return msg + fields;
}

int ConnectUnix(const std::string& path) {
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.size() >= sizeof(addr.sun_path)) {
    close(fd);
    return -1;
  }
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

std::string Rfc3339(Wall::time_point t) {
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
  time_t secs = static_cast<time_t>(ms / 1000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[64];
  std::strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%S", &tm);
  char frac[16];
  std::snprintf(frac, sizeof(frac), ".%03dZ", static_cast<int>(ms % 1000));
  return std::string(buf) + frac;
}

Wall::time_point FromEpochSeconds(double s) {
  return Wall::time_point(
      std::chrono::duration_cast<Wall::duration>(std::chrono::duration<double>(s)));
}

// The client's startup packet: parameters in order.
struct Startup {
  std::vector<std::pair<std::string, std::string>> params;
  std::string Get(const std::string& key) const {
    for (const auto& [k, v] : params)
      if (k == key) return v;
    return "";
  }
};

std::string StartupPacket(const Startup& s) {
  std::string body;
  PutU32(body, kProtocol3);
  for (const auto& [k, v] : s.params) {
    body += k;
    body.push_back('\0');
    body += v;
    body.push_back('\0');
  }
  body.push_back('\0');
  std::string out;
  PutU32(out, static_cast<std::uint32_t>(body.size() + 4));
  return out + body;
}

}  // namespace

// compute_ctl's ComputeMonitor, one look at a time (see the header for the source). Owned by the
// monitor thread.
struct NeonSim::Monitor {
  PGconn* conn = nullptr;
  std::uint64_t generation = 0;
  std::optional<double> active_time;
  std::optional<long long> sessions;
  std::optional<Wall::time_point> last_active;

  ~Monitor() { Disconnect(); }
  void Disconnect() {
    if (conn) PQfinish(conn);
    conn = nullptr;
  }
  void Reset(std::uint64_t gen) {  // a new compute: a new compute_ctl with empty baselines
    Disconnect();
    generation = gen;
    active_time.reset();
    sessions.reset();
    last_active.reset();
  }
  bool Connect(const PgServer& server) {
    Disconnect();
    std::string ci = "host='" + server.socket_dir() + "' port=" + std::to_string(server.port()) +
                     " user=" + kCloudAdmin + " dbname=postgres connect_timeout=2" +
                     " application_name='compute_ctl:compute_monitor'" +
                     " options='-c statement_timeout=2000'";
    conn = PQconnectdb(ci.c_str());
    if (PQstatus(conn) != CONNECTION_OK) {
      Disconnect();
      return false;
    }
    return true;
  }
  // One query; rows of text. nullopt on error.
  std::optional<std::vector<std::vector<std::string>>> Query(const char* sql) {
    PGresult* r = PQexec(conn, sql);
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
      PQclear(r);
      return std::nullopt;
    }
    std::vector<std::vector<std::string>> rows;
    for (int i = 0; i < PQntuples(r); ++i) {
      std::vector<std::string> row;
      for (int c = 0; c < PQnfields(r); ++c)
        row.push_back(PQgetisnull(r, i, c) ? std::string() : PQgetvalue(r, i, c));
      rows.push_back(std::move(row));
    }
    PQclear(r);
    return rows;
  }
  long long Count(const char* sql, bool& ok) {
    auto rows = Query(sql);
    if (!rows || rows->size() != 1 || rows->front().size() != 1) {
      ok = false;
      return 0;
    }
    return std::stoll(rows->front()[0]);
  }
  // ComputeMonitor::check. false on a query error (the caller reconnects).
  bool Check() {
    const auto now = Wall::now();
    auto stats = Query(
        "SELECT coalesce(sum(active_time), 0.0)::float8, coalesce(sum(sessions), 0)::bigint "
        "FROM pg_stat_database WHERE datname NOT IN ('postgres', 'template0', 'template1')");
    if (!stats || stats->size() != 1) return false;
    const double at = std::stod((*stats)[0][0]);
    const long long ss = std::stoll((*stats)[0][1]);
    const bool detected = (active_time && *active_time != at) || (sessions && *sessions != ss);
    active_time = at;
    sessions = ss;
    if (detected) {
      last_active = now;
      return true;
    }
    auto backends = Query(
        "SELECT state, extract(epoch FROM state_change)::float8 FROM pg_stat_activity "
        "WHERE backend_type = 'client backend' AND pid <> pg_backend_pid() "
        "AND usename <> 'cloud_admin'");
    if (!backends) return false;
    std::optional<Wall::time_point> newest_idle;
    for (const auto& b : *backends) {
      if (b[0].empty()) continue;  // state NULL: not visible to us
      if (b[0] != "idle") {
        last_active = now;
        return true;
      }
      if (b[1].empty()) continue;
      auto t = FromEpochSeconds(std::stod(b[1]));
      if (!newest_idle || t > *newest_idle) newest_idle = t;
    }
    if (newest_idle && (!last_active || *newest_idle > *last_active)) {
      last_active = newest_idle;
      return true;
    }
    bool ok = true;
    const long long walsenders = Count(
        "SELECT count(*) FROM pg_stat_replication WHERE application_name <> 'walproposer'", ok);
    const long long subscriptions =
        ok ? Count("SELECT count(*) FROM pg_stat_subscription WHERE pid IS NOT NULL", ok) : 0;
    const long long autovacuum =
        ok ? Count("SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'autovacuum worker'",
                   ok)
           : 0;
    if (!ok) return false;
    if (walsenders > 0 || subscriptions > 0 || autovacuum > 0) last_active = now;
    return true;
  }
};

struct NeonSim::Api {
  httplib::Server server;
  std::thread thread;
};

NeonSim::NeonSim(PgServer& server, NeonSimOptions options)
    : server_(server), options_(std::move(options)) {
  roles_[kUser] = kPassword;
  roles_[kCloudAdmin] = kCloudAdminPassword;
  if (!server_.running()) server_.Start();
  server_.Psql(std::string("DO $$BEGIN IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '") +
               kCloudAdmin + "') THEN CREATE ROLE " + kCloudAdmin + " SUPERUSER LOGIN PASSWORD '" +
               kCloudAdminPassword + "'; END IF; END$$");
  started_at_ = Wall::now();
  generation_ = 1;
  if (options_.start_suspended) {
    server_.Stop();
    state_ = "idle";
  }
  listen_fd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (listen_fd_ < 0) throw std::runtime_error("neon sim: socket failed");
  int one = 1;
  setsockopt(listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = 0;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t alen = sizeof(addr);
  if (bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
      listen(listen_fd_, 64) != 0 ||
      getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &alen) != 0) {
    close(listen_fd_);
    throw std::runtime_error(std::string("neon sim: bind/listen failed: ") + std::strerror(errno));
  }
  port_ = ntohs(addr.sin_port);
  StartApi();
  accept_thread_ = std::thread([this] { AcceptLoop(); });
  monitor_thread_ = std::thread([this] { MonitorLoop(); });
  if (options_.agent_interval.count() > 0) agent_thread_ = std::thread([this] { AgentLoop(); });
}

NeonSim::~NeonSim() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (accept_thread_.joinable()) accept_thread_.join();
  if (monitor_thread_.joinable()) monitor_thread_.join();
  if (agent_thread_.joinable()) agent_thread_.join();
  {
    std::lock_guard lock(workers_mu_);
    for (auto& w : workers_) {
      if (w->client_fd >= 0) shutdown(w->client_fd, SHUT_RDWR);
    }
  }
  ReapWorkers(true);
  if (listen_fd_ >= 0) close(listen_fd_);
  if (api_) {
    api_->server.stop();
    if (api_->thread.joinable()) api_->thread.join();
  }
}

std::string NeonSim::Url(const std::string& dbname) const {
  std::string url = server_.Url(dbname);
  std::string from = ":" + std::to_string(server_.port()) + "/";
  auto pos = url.rfind(from);
  if (pos == std::string::npos) throw std::runtime_error("neon sim: unexpected server URL");
  return url.replace(pos, from.size(), ":" + std::to_string(port_) + "/");
}

std::string NeonSim::ApiUrl() const { return "http://127.0.0.1:" + std::to_string(api_port_); }

void NeonSim::AddRole(const std::string& user, const std::string& password) {
  std::lock_guard lock(mu_);
  roles_[user] = password;
}

std::string NeonSim::compute_state() const {
  std::lock_guard lock(mu_);
  return state_;
}

bool NeonSim::WaitForState(const std::string& state, std::chrono::milliseconds timeout) const {
  auto deadline = Clock::now() + timeout;
  while (Clock::now() < deadline) {
    if (compute_state() == state) return true;
    std::this_thread::sleep_for(20ms);
  }
  return compute_state() == state;
}

void NeonSim::Record(std::unique_lock<std::mutex>&, ComputeTransition t) {
  if (transitions_.size() >= 1000) transitions_.erase(transitions_.begin());
  transitions_.push_back(std::move(t));
}

void NeonSim::Suspend(std::unique_lock<std::mutex>& lock, const std::string& cause) {
  transition_ = true;
  lock.unlock();
  bool ok = true;
  try {
    server_.Stop();  // pg_ctl stop -m fast: open sessions get FATAL 57P01
  } catch (const std::exception&) {
    ok = false;  // left running; the next look tries again
  }
  lock.lock();
  transition_ = false;
  if (ok) {
    state_ = "idle";
    ++suspends_;
    Record(lock, {"suspend_compute", cause, Wall::now(), 0ms});
  }
  cv_.notify_all();
}

void NeonSim::SuspendNow() {
  std::unique_lock lock(mu_);
  cv_.wait(lock, [this] { return !transition_ || stopping_; });
  if (state_ != "active") return;
  Suspend(lock, "SuspendNow");
}

void NeonSim::SetAutoSuspend(bool on) {
  std::lock_guard lock(mu_);
  auto_suspend_ = on;
  last_active_ = Wall::now();
}

int NeonSim::open_connections() const {
  std::lock_guard lock(mu_);
  return open_;
}
int NeonSim::suspends() const {
  std::lock_guard lock(mu_);
  return suspends_;
}
int NeonSim::cold_starts() const {
  std::lock_guard lock(mu_);
  return cold_starts_;
}
std::optional<std::chrono::milliseconds> NeonSim::last_cold_start() const {
  std::lock_guard lock(mu_);
  return last_cold_start_;
}
std::chrono::system_clock::time_point NeonSim::last_active() const {
  std::lock_guard lock(mu_);
  return last_active_.value_or(started_at_);
}
std::vector<ComputeTransition> NeonSim::transitions() const {
  std::lock_guard lock(mu_);
  return transitions_;
}
int NeonSim::wakes_by(const std::string& application_name) const {
  std::lock_guard lock(mu_);
  const std::string needle = "application=" + application_name;
  int n = 0;
  for (const auto& t : transitions_) {
    if (t.action == "start_compute" && t.cause.size() >= needle.size() &&
        t.cause.compare(t.cause.size() - needle.size(), needle.size(), needle) == 0) {
      ++n;
    }
  }
  return n;
}

void NeonSim::RefuseWith(std::string message) {
  std::lock_guard lock(mu_);
  refusal_ = std::move(message);
}
void NeonSim::StopRefusing() {
  std::lock_guard lock(mu_);
  refusal_.reset();
}
void NeonSim::SetApiRateLimited(bool on, int retry_after_seconds) {
  std::lock_guard lock(mu_);
  rate_limited_ = on;
  retry_after_seconds_ = retry_after_seconds;
}
void NeonSim::SetApiStatus(int status) {
  std::lock_guard lock(mu_);
  forced_status_ = status;
}

void NeonSim::AcceptLoop() {
  while (!stopping_) {
    pollfd pfd{listen_fd_, POLLIN, 0};
    int r = poll(&pfd, 1, 50);
    ReapWorkers(false);
    if (r <= 0) continue;
    int fd = accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) continue;
    ++accepted_;
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    std::lock_guard lock(workers_mu_);
    if (static_cast<int>(workers_.size()) >= options_.max_connections) {
      std::string err = ErrorResponse("XX000", kNeonTooManyAttemptsError);
      WriteFull(fd, err);
      close(fd);
      continue;
    }
    auto w = std::make_unique<Worker>();
    w->client_fd = fd;
    Worker* raw = w.get();
    workers_.push_back(std::move(w));
    raw->thread = std::thread([this, raw] { HandleConnection(raw); });
  }
}

void NeonSim::ReapWorkers(bool all) {
  std::list<std::unique_ptr<Worker>> finished;
  {
    std::lock_guard lock(workers_mu_);
    for (auto it = workers_.begin(); it != workers_.end();) {
      if (all || (*it)->done) {
        finished.push_back(std::move(*it));
        it = workers_.erase(it);
      } else {
        ++it;
      }
    }
  }
  for (auto& w : finished) {
    if (w->thread.joinable()) w->thread.join();
  }
}

void NeonSim::MonitorLoop() {
  Monitor monitor;
  while (true) {
    std::unique_lock lock(mu_);
    const auto until = Clock::now() + options_.monitor_interval;
    cv_.wait_until(lock, until, [&] { return stopping_.load() || Clock::now() >= until; });
    if (stopping_) break;
    if (state_ != "active" || transition_) continue;
    const std::uint64_t generation = generation_;
    lock.unlock();

    if (monitor.generation != generation) monitor.Reset(generation);
    bool looked = false;
    if (monitor.conn || monitor.Connect(server_)) {
      try {
        looked = monitor.Check();
      } catch (const std::exception&) {  // a number that does not parse: look again
        looked = false;
      }
      if (!looked) monitor.Disconnect();  // reconnect on the next turn, as compute_ctl does
    }

    lock.lock();
    if (looked && generation == generation_ && monitor.last_active &&
        (!last_active_ || *monitor.last_active > *last_active_)) {
      last_active_ = monitor.last_active;  // compute.rs update_last_active: forward only
    }
    // The control plane's side.
    if (auto_suspend_ && options_.suspend_timeout.count() > 0 && state_ == "active" &&
        !transition_ && generation == generation_) {
      const auto last = std::max(last_active_.value_or(started_at_), started_at_);
      if (Wall::now() - last >= options_.suspend_timeout) {
        monitor.Disconnect();
        Suspend(lock, "suspend_timeout");
      }
    }
  }
}

void NeonSim::AgentLoop() {
  while (true) {
    {
      std::unique_lock lock(mu_);
      const auto until = Clock::now() + options_.agent_interval;
      cv_.wait_until(lock, until, [&] { return stopping_.load() || Clock::now() >= until; });
      if (stopping_) break;
      if (state_ != "active" || transition_) continue;
    }
    // Inside the compute: the Unix socket, not the proxy (it never wakes anything).
    std::string ci = "host='" + server_.socket_dir() + "' port=" + std::to_string(server_.port()) +
                     " user=" + kCloudAdmin +
                     " dbname=postgres connect_timeout=2 application_name=sql_exporter";
    PGconn* c = PQconnectdb(ci.c_str());
    if (PQstatus(c) == CONNECTION_OK) {
      PGresult* r = PQexec(c,
                           "SELECT datname, numbackends, xact_commit, blks_read, "
                           "pg_database_size(datname) FROM pg_stat_database "
                           "WHERE datname IS NOT NULL");
      if (PQresultStatus(r) == PGRES_TUPLES_OK) ++agent_scrapes_;
      PQclear(r);
    }
    PQfinish(c);
  }
}

void NeonSim::StartServer() {
  // A fresh basebackup has no statistics: drop what the clean shutdown saved.
  std::error_code ec;
  for (const auto& entry :
       std::filesystem::directory_iterator(server_.data_dir() + "/pg_stat", ec)) {
    std::error_code rm;
    if (entry.is_regular_file(rm)) std::filesystem::remove(entry.path(), rm);
  }
  server_.Start();
}

bool NeonSim::EnsureAwake(const std::string& cause) {
  std::unique_lock lock(mu_);
  cv_.wait(lock, [this] { return !transition_ || stopping_; });
  if (stopping_) return false;
  if (state_ == "active") return true;
  state_ = "init";
  transition_ = true;
  const auto begin = Clock::now();
  cv_.notify_all();
  lock.unlock();
  bool ok = true;
  const auto delay_end = begin + options_.cold_start_delay;
  while (Clock::now() < delay_end && !stopping_) std::this_thread::sleep_for(10ms);
  if (stopping_) {
    ok = false;
  } else {
    try {
      StartServer();
    } catch (const std::exception&) {
      ok = false;
    }
  }
  lock.lock();
  transition_ = false;
  if (ok) {
    const auto took = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - begin);
    state_ = "active";
    ++cold_starts_;
    ++generation_;
    started_at_ = Wall::now();
    last_active_.reset();
    last_cold_start_ = took;
    Record(lock, {"start_compute", cause, started_at_, took});
  } else {
    state_ = "idle";
  }
  cv_.notify_all();
  return ok;
}

int NeonSim::ConnectBackend() const {
  return ConnectUnix(server_.socket_dir() + "/.s.PGSQL." + std::to_string(server_.port()));
}

void NeonSim::HandleConnection(Worker* w) {
  const int client = w->client_fd;
  auto finish = [&] {
    std::lock_guard lock(workers_mu_);
    shutdown(client, SHUT_RDWR);
    close(client);
    w->client_fd = -1;
    w->done = true;
  };
  // Startup: SSL/GSS negotiation ('N'), a cancel (forwarded), or the StartupMessage.
  Startup startup;
  bool have_startup = false;
  for (int i = 0; i < 3 && !have_startup; ++i) {
    std::uint32_t header[2];
    if (!ReadFull(client, header, 8, 5s)) return finish();
    const std::uint32_t len = ntohl(header[0]);
    const std::uint32_t code = ntohl(header[1]);
    if (len < 8 || len > 10000) return finish();
    std::string rest(len - 8, '\0');
    if (len > 8 && !ReadFull(client, rest.data(), rest.size(), 5s)) return finish();
    if (code == kSslRequest || code == kGssEncRequest) {
      if (!WriteFull(client, "N", 1)) return finish();
      continue;
    }
    if (code == kCancelRequest) {
      int backend = compute_state() == "active" ? ConnectBackend() : -1;
      if (backend >= 0) {
        WriteFull(backend, header, 8);
        WriteFull(backend, rest);
        close(backend);
      }
      return finish();
    }
    if (code != kProtocol3) return finish();
    std::size_t pos = 0;
    while (pos < rest.size() && rest[pos] != '\0') {
      std::string key = rest.c_str() + pos;
      pos += key.size() + 1;
      if (pos >= rest.size()) break;
      std::string value = rest.c_str() + pos;
      pos += value.size() + 1;
      startup.params.emplace_back(std::move(key), std::move(value));
    }
    have_startup = true;
  }
  if (!have_startup) return finish();

  std::optional<std::string> refusal;
  std::optional<std::string> expected_password;
  const std::string user = startup.Get("user");
  {
    std::lock_guard lock(mu_);
    refusal = refusal_;
    if (auto it = roles_.find(user); it != roles_.end()) expected_password = it->second;
  }
  if (refusal) {
    WriteFull(client, ErrorResponse("XX000", *refusal));
    return finish();
  }

  // The proxy authenticates the client itself, before it wakes anything.
  std::string ask = "R";
  PutU32(ask, 8);
  PutU32(ask, 3);  // AuthenticationCleartextPassword
  if (!WriteFull(client, ask)) return finish();
  char type = 0;
  std::uint32_t mlen = 0;
  if (!ReadFull(client, &type, 1, 10s) || type != 'p' || !ReadFull(client, &mlen, 4, 5s)) {
    return finish();
  }
  mlen = ntohl(mlen);
  if (mlen < 5 || mlen > 10000) return finish();
  std::string password(mlen - 4, '\0');
  if (!ReadFull(client, password.data(), password.size(), 5s)) return finish();
  if (!password.empty() && password.back() == '\0') password.pop_back();
  if (!expected_password || password != *expected_password) {
    ++auth_failures_;
    WriteFull(client,
              ErrorResponse("28P01", "password authentication failed for user \"" + user + "\""));
    return finish();
  }

  const std::string cause =
      "client user=" + user + " application=" + startup.Get("application_name");
  int backend = -1;
  // Neon's proxy retries a connect that failed because the compute just went away.
  for (int attempt = 0; attempt < 3 && backend < 0 && !stopping_; ++attempt) {
    if (!EnsureAwake(cause)) break;
    backend = ConnectBackend();
  }
  if (backend < 0) {
    WriteFull(client, ErrorResponse("XX000", kNeonWakingError));
    return finish();
  }
  {
    std::lock_guard lock(mu_);
    ++open_;
  }
  if (WriteFull(backend, StartupPacket(startup))) {
    char buf[16384];
    bool open = true;
    while (open && !stopping_) {
      pollfd fds[2] = {{client, POLLIN, 0}, {backend, POLLIN, 0}};
      int r = poll(fds, 2, 100);
      if (r < 0 && errno != EINTR) break;
      if (r <= 0) continue;
      for (int i = 0; i < 2 && open; ++i) {
        if (!(fds[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
        const int from = i == 0 ? client : backend;
        const int to = i == 0 ? backend : client;
        ssize_t n = recv(from, buf, sizeof(buf), 0);
        if (n <= 0 || !WriteFull(to, buf, static_cast<std::size_t>(n))) open = false;
      }
    }
  }
  close(backend);
  {
    std::lock_guard lock(mu_);
    --open_;
  }
  finish();
}

void NeonSim::StartApi() {
  api_ = std::make_unique<Api>();
  // Common checks; true when the request may be answered normally.
  auto admit = [this](const httplib::Request& req, httplib::Response& res) {
    ++api_requests_;
    auto json_error = [&res](int status, const std::string& msg) {
      res.status = status;
      res.set_content(nlohmann::json{{"message", msg}}.dump(), "application/json");
      return false;
    };
    if (req.get_header_value("Authorization") != "Bearer " + options_.api_key) {
      return json_error(401, "authentication required");
    }
    if (forced_status_ != 0) return json_error(forced_status_, "forced");
    if (rate_limited_) {
      res.set_header("Retry-After", std::to_string(retry_after_seconds_));
      return json_error(429, "rate limit exceeded");
    }
    if (req.matches[1] != options_.project_id) return json_error(404, "not found");
    return true;
  };
  api_->server.Get(
      R"(/projects/([^/]+)/endpoints/([^/]+))",
      [this, admit](const httplib::Request& req, httplib::Response& res) {
        std::lock_guard lock(mu_);
        if (!admit(req, res)) return;
        if (req.matches[2] != options_.endpoint_id) {
          res.status = 404;
          res.set_content(R"({"message":"not found"})", "application/json");
          return;
        }
        const long long timeout = options_.suspend_timeout.count() <= 0
                                      ? -1
                                      : (options_.suspend_timeout.count() + 999) / 1000;
        nlohmann::json ep = {{"id", options_.endpoint_id},
                             {"project_id", options_.project_id},
                             {"current_state", state_},
                             {"suspend_timeout_seconds", timeout},
                             {"last_active", Rfc3339(last_active_.value_or(started_at_))}};
        res.set_content(nlohmann::json{{"endpoint", ep}}.dump(), "application/json");
      });
  api_->server.Get(R"(/projects/([^/]+)/operations)", [this, admit](const httplib::Request& req,
                                                                    httplib::Response& res) {
    std::lock_guard lock(mu_);
    if (!admit(req, res)) return;
    nlohmann::json ops = nlohmann::json::array();
    int id = static_cast<int>(transitions_.size());
    for (auto it = transitions_.rbegin(); it != transitions_.rend(); ++it, --id) {
      ops.push_back({{"id", "op-" + std::to_string(id)},
                     {"action", it->action},
                     {"status", "finished"},
                     {"endpoint_id", options_.endpoint_id},
                     {"created_at", Rfc3339(it->at - it->took)},
                     {"updated_at", Rfc3339(it->at)}});
    }
    res.set_content(nlohmann::json{{"operations", ops}}.dump(), "application/json");
  });
  api_port_ = api_->server.bind_to_any_port("127.0.0.1");
  if (api_port_ <= 0) throw std::runtime_error("neon sim: API bind failed");
  api_->thread = std::thread([this] { api_->server.listen_after_bind(); });
}

}  // namespace pgvigil::test
