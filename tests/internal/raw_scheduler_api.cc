#include "tests/internal/raw_scheduler_api.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "common/json.h"
#include "common/recordio.h"

namespace cairn::tests {

// ---- SchedulerEventReader ---------------------------------------------------

SchedulerEventReader::SchedulerEventReader(
    std::unique_ptr<http::ClientStream> stream, WireEncoding encoding)
    : stream_(std::move(stream)), encoding_(encoding) {}

absl::StatusOr<ReceivedEvent> SchedulerEventReader::Next(
    v1::scheduler::Event::Type type, absl::Time deadline) {
  return Next(
      [type](const v1::scheduler::Event& e) { return e.type() == type; },
      deadline);
}

absl::StatusOr<ReceivedEvent> SchedulerEventReader::Next(
    const std::function<bool(const v1::scheduler::Event&)>& predicate,
    absl::Time deadline) {
  for (;;) {
    if (end_.has_value()) return *end_;
    const absl::Duration left = deadline - absl::Now();
    if (left <= absl::ZeroDuration()) {
      return absl::DeadlineExceededError("no such event in time");
    }
    absl::StatusOr<std::optional<std::string>> chunk = stream_->NextChunk(left);
    if (!chunk.ok()) {
      if (absl::IsDeadlineExceeded(chunk.status())) {
        return absl::DeadlineExceededError("no such event in time");
      }
      end_ = absl::UnavailableError(
          absl::StrCat("the stream failed: ", chunk.status().ToString()));
      continue;
    }
    if (!chunk->has_value()) {
      end_ = absl::UnavailableError("the stream ended");
      continue;
    }
    // One chunk, one record: decode the chunk on its own.
    recordio::Decoder decoder;
    std::vector<std::string> records;
    absl::Status fed = decoder.Feed(**chunk, &records);
    if (!fed.ok() || records.size() != 1 || decoder.HasPartialRecord()) {
      ++framing_errors_;
    }
    for (std::string& record : records) {
      ReceivedEvent received;
      received.record = std::move(record);
      const bool parsed = encoding_ == WireEncoding::kJson
                              ? FromJson(received.record, &received.event).ok()
                              : received.event.ParseFromString(received.record);
      if (!parsed) {
        end_ = absl::InternalError(
            absl::StrCat("a record does not parse: ", received.record));
        break;
      }
      if (received.event.type() == v1::scheduler::Event::HEARTBEAT) {
        ++heartbeats_;
      }
      if (predicate(received.event)) return received;
      skipped_.push_back(std::move(received));
    }
  }
}

// ---- Raw responses ----------------------------------------------------------

std::optional<std::string> RawResponse::HeaderExact(
    absl::string_view name) const {
  for (const auto& [n, v] : headers) {
    if (n == name) return v;
  }
  return std::nullopt;
}

std::optional<RawResponse> ParseRawResponse(absl::string_view bytes) {
  const size_t head_end = bytes.find("\r\n\r\n");
  if (head_end == absl::string_view::npos) return std::nullopt;
  std::vector<absl::string_view> lines =
      absl::StrSplit(bytes.substr(0, head_end), "\r\n");
  RawResponse response;
  // "HTTP/1.1 200 OK"
  std::vector<absl::string_view> status_line =
      absl::StrSplit(lines[0], absl::MaxSplits(' ', 2));
  if (status_line.size() < 2 ||
      !absl::SimpleAtoi(status_line[1], &response.status)) {
    return std::nullopt;
  }
  std::optional<size_t> content_length;
  for (size_t i = 1; i < lines.size(); ++i) {
    const size_t colon = lines[i].find(':');
    if (colon == absl::string_view::npos) continue;
    std::string name(lines[i].substr(0, colon));
    std::string value(absl::StripAsciiWhitespace(lines[i].substr(colon + 1)));
    if (absl::EqualsIgnoreCase(name, "Content-Length")) {
      size_t n = 0;
      if (absl::SimpleAtoi(value, &n)) content_length = n;
    }
    if (absl::EqualsIgnoreCase(name, "Transfer-Encoding") &&
        absl::StrContains(absl::AsciiStrToLower(value), "chunked")) {
      response.chunked = true;
    }
    response.headers.emplace_back(std::move(name), std::move(value));
  }
  absl::string_view rest = bytes.substr(head_end + 4);
  if (!response.chunked) {
    const size_t n = content_length.value_or(rest.size());
    response.body = std::string(rest.substr(0, std::min(n, rest.size())));
    response.complete = !content_length.has_value() || rest.size() >= n;
    return response;
  }
  // "<hex size>[;ext]\r\n<data>\r\n" ... "0\r\n\r\n"
  for (;;) {
    const size_t line_end = rest.find("\r\n");
    if (line_end == absl::string_view::npos) break;
    absl::string_view size_text = rest.substr(0, line_end);
    size_text = size_text.substr(0, size_text.find(';'));
    size_t size = 0;
    if (!absl::SimpleHexAtoi(absl::StripAsciiWhitespace(size_text), &size)) {
      break;
    }
    if (size == 0) {
      // No trailers are expected: "0\r\n\r\n".
      response.complete = rest.size() >= line_end + 4;
      break;
    }
    if (rest.size() < line_end + 2 + size + 2) break;
    std::string chunk(rest.substr(line_end + 2, size));
    response.body += chunk;
    response.chunks.push_back(std::move(chunk));
    rest.remove_prefix(line_end + 2 + size + 2);
  }
  return response;
}

std::string ChunkedBody(absl::string_view body, size_t piece) {
  std::string out;
  for (size_t at = 0; at < body.size(); at += piece) {
    absl::string_view part = body.substr(at, piece);
    absl::StrAppend(&out, absl::Hex(part.size()), "\r\n", part, "\r\n");
  }
  absl::StrAppend(&out, "0\r\n\r\n");
  return out;
}

// ---- RawHttpConnection ------------------------------------------------------

absl::StatusOr<std::unique_ptr<RawHttpConnection>> RawHttpConnection::Connect(
    uint16_t port) {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return absl::InternalError(strerror(errno));
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(port);
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<const sockaddr*>(&address),
              sizeof(address)) != 0) {
    const std::string why = strerror(errno);
    close(fd);
    return absl::UnavailableError(
        absl::StrCat("connect to 127.0.0.1:", port, ": ", why));
  }
  return std::unique_ptr<RawHttpConnection>(new RawHttpConnection(fd));
}

RawHttpConnection::~RawHttpConnection() { close(fd_); }

absl::Status RawHttpConnection::Send(absl::string_view bytes) {
  while (!bytes.empty()) {
    const ssize_t n = send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;
      return absl::UnavailableError(absl::StrCat("send: ", strerror(errno)));
    }
    bytes.remove_prefix(static_cast<size_t>(n));
  }
  return absl::OkStatus();
}

absl::StatusOr<RawResponse> RawHttpConnection::ReadResponse(
    absl::Time deadline, const std::function<bool(const RawResponse&)>& done) {
  auto acceptable = [&](const std::optional<RawResponse>& r) {
    return r.has_value() && (done ? done(*r) : r->complete);
  };
  for (;;) {
    std::optional<RawResponse> response = ParseRawResponse(received_);
    if (acceptable(response)) return *std::move(response);
    if (closed_) {
      return absl::UnavailableError(
          absl::StrCat("the connection closed after: ", received_));
    }
    const absl::Duration left = deadline - absl::Now();
    if (left <= absl::ZeroDuration()) {
      return absl::DeadlineExceededError(
          absl::StrCat("no acceptable response in time; received: ",
                       received_.substr(0, 2000)));
    }
    pollfd p{fd_, POLLIN, 0};
    const int ready = poll(&p, 1,
                           static_cast<int>(std::max<int64_t>(
                               1, absl::ToInt64Milliseconds(left))));
    if (ready < 0 && errno != EINTR) {
      return absl::InternalError(absl::StrCat("poll: ", strerror(errno)));
    }
    if (ready <= 0) continue;
    char buffer[16384];
    const ssize_t n = recv(fd_, buffer, sizeof(buffer), 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      closed_ = true;
      continue;
    }
    received_.append(buffer, static_cast<size_t>(n));
  }
}

}  // namespace cairn::tests
