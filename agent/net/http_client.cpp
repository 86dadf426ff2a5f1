#include "net/http_client.hpp"

#include <httplib.h>

#include <algorithm>

#include "util/host_lookup.hpp"

namespace pgvigil {
namespace {

using Clock = std::chrono::steady_clock;

HttpError FromHttplib(httplib::Error err, bool timed_out) {
  HttpError e;
  e.timed_out = timed_out || err == httplib::Error::ConnectionTimeout;
  e.message = httplib::to_string(err);
  switch (err) {
    case httplib::Error::SSLLoadingCerts:
    case httplib::Error::SSLServerVerification:
      e.kind = HttpErrorKind::kTlsVerify;
      break;
    case httplib::Error::SSLConnection:
      e.kind = HttpErrorKind::kTls;
      break;
    case httplib::Error::Canceled:
      e.kind = HttpErrorKind::kCanceled;
      break;
    case httplib::Error::Connection:
    case httplib::Error::ConnectionTimeout:
    case httplib::Error::Read:
    case httplib::Error::Write:
      e.kind = e.timed_out ? HttpErrorKind::kTimeout : HttpErrorKind::kConnection;
      break;
    default:
      e.kind = HttpErrorKind::kOther;
      break;
  }
  return e;
}

}  // namespace

HttpClient::HttpClient(HttpEndpoint endpoint)
    : endpoint_(std::move(endpoint)),
      client_(std::make_unique<httplib::Client>(endpoint_.Origin())) {
  client_->set_keep_alive(false);
  client_->set_follow_location(false);
  if (!endpoint_.username.empty() || !endpoint_.password.empty()) {
    client_->set_basic_auth(endpoint_.username, endpoint_.password);
  }
}

HttpClient::~HttpClient() = default;

void HttpClient::Abort() {
  abort_.request_stop();
  std::lock_guard lock(mu_);
  if (in_flight_) client_->stop();
}

Result<HttpReply, HttpError> HttpClient::Send(const HttpRequest& request,
                                              const HttpTimeouts& timeouts,
                                              std::optional<Millis> budget) {
  const auto t_lookup = Clock::now();
  const HostLookup found =
      LookupHosts({endpoint_.host}, t_lookup + timeouts.dns, abort_.get_token()).front();
  if (abort_.stop_requested()) {
    return tl::unexpected(HttpError{HttpErrorKind::kCanceled, false, "canceled"});
  }
  if (!found) {
    return tl::unexpected(
        HttpError{HttpErrorKind::kDns, found.error().timed_out, found.error().message});
  }
  // With a budget, what the lookup used is not given again.
  Millis connect = timeouts.connect;
  Millis io = timeouts.io;
  if (budget) {
    const Millis left =
        std::max(Millis(1), *budget - std::chrono::duration_cast<Millis>(Clock::now() - t_lookup));
    connect = std::min(connect, left);
    io = std::min(io, left);
  }
  client_->set_connection_timeout(connect);
  client_->set_read_timeout(io);
  client_->set_write_timeout(io);
  httplib::Headers headers(request.headers.begin(), request.headers.end());
  {
    std::lock_guard lock(mu_);
    in_flight_ = true;
  }
  const auto t0 = Clock::now();
  httplib::Result res{nullptr, httplib::Error::Unknown};
  TryAddresses(*found, &address_, [&](const std::string& address) {
    client_->set_hostname_addr_map({{endpoint_.host, address}});
    if (request.method == "POST") {
      res = client_->Post(request.target, headers, request.body, request.content_type);
    } else {
      res = client_->Get(request.target, headers);
    }
    return res || res.error() != httplib::Error::Connection || abort_.stop_requested() ||
           (budget && Clock::now() - t0 >= io);
  });
  {
    std::lock_guard lock(mu_);
    in_flight_ = false;
  }
  if (!res) {
    ++address_;  // e.g. a connect timeout: the next request starts at the next address
    const httplib::Error err = res.error();
    // A read or write that ends at the deadline is a timeout, not a broken connection.
    const bool timed_out = (err == httplib::Error::Read || err == httplib::Error::Write) &&
                           Clock::now() - t0 >= io - Millis(50);
    return tl::unexpected(FromHttplib(err, timed_out));
  }
  HttpReply reply;
  reply.status = res->status;
  reply.body = std::move(res->body);
  if (res->has_header("Retry-After")) reply.retry_after = res->get_header_value("Retry-After");
  return reply;
}

}  // namespace pgvigil
