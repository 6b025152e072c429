#include "tests/internal/fake_api_server.h"

#include <algorithm>
#include <utility>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/json.h"
#include "common/recordio.h"

namespace cairn::tests {
namespace {

http::ServerOptions LocalEphemeral() {
  http::ServerOptions options;
  options.address = "127.0.0.1";
  options.port = 0;
  options.shutdown_grace = absl::Seconds(1);
  return options;
}

}  // namespace

FakeApiServer::FakeApiServer(std::string path)
    : path_(std::move(path)), server_(LocalEphemeral()) {
  server_.Handle("POST", path_,
                 [this](http::Request request,
                        std::shared_ptr<http::Responder> r) {
                   Handler handler;
                   {
                     std::lock_guard<std::mutex> lock(mu_);
                     requests_.push_back(request);
                     handler = handler_;
                     cv_.notify_all();
                   }
                   if (handler) {
                     handler(request, std::move(r));
                   } else {
                     r->Respond(http::Response{202, {}, ""});
                   }
                 });
}

FakeApiServer::~FakeApiServer() { Stop(); }

absl::Status FakeApiServer::Start() { return server_.Start(); }

void FakeApiServer::Stop() {
  CloseStream();
  server_.Stop();
}

std::string FakeApiServer::address() const {
  return absl::StrCat("127.0.0.1:", port());
}

void FakeApiServer::SetHandler(Handler handler) {
  std::lock_guard<std::mutex> lock(mu_);
  handler_ = std::move(handler);
}

std::vector<http::Request> FakeApiServer::requests() const {
  std::lock_guard<std::mutex> lock(mu_);
  return requests_;
}

size_t FakeApiServer::CountRequests(const Predicate& predicate) const {
  std::lock_guard<std::mutex> lock(mu_);
  return static_cast<size_t>(
      std::count_if(requests_.begin(), requests_.end(), predicate));
}

bool FakeApiServer::WaitForRequests(const Predicate& predicate, size_t count,
                                    absl::Time deadline) const {
  std::unique_lock<std::mutex> lock(mu_);
  while (static_cast<size_t>(std::count_if(
             requests_.begin(), requests_.end(), predicate)) < count) {
    const absl::Duration left = deadline - absl::Now();
    if (left <= absl::ZeroDuration()) return false;
    cv_.wait_for(lock, absl::ToChronoNanoseconds(left));
  }
  return true;
}

bool FakeApiServer::StartStream(const std::shared_ptr<http::Responder>& r,
                                const std::string& header,
                                const std::string& stream_id) {
  CloseStream();
  if (!r->StartStream(200, {{"Content-Type", "application/recordio"},
                            {"Message-Content-Type", "application/json"},
                            {header, stream_id}})) {
    return false;
  }
  std::lock_guard<std::mutex> lock(mu_);
  stream_ = r;
  return true;
}

bool FakeApiServer::SendEvent(const google::protobuf::Message& message) {
  // Mesos's JSON, as the real master writes its streams.
  absl::StatusOr<std::string> json = ToJson(message, MesosJsonOptions());
  if (!json.ok()) return false;
  std::shared_ptr<http::Responder> stream;
  {
    std::lock_guard<std::mutex> lock(mu_);
    stream = stream_;
  }
  return stream != nullptr && stream->WriteChunk(recordio::Encode(*json));
}

void FakeApiServer::CloseStream() {
  std::shared_ptr<http::Responder> stream;
  {
    std::lock_guard<std::mutex> lock(mu_);
    stream = std::move(stream_);
    stream_.reset();
  }
  if (stream != nullptr) stream->Close();
}

bool FakeApiServer::stream_open() const {
  std::lock_guard<std::mutex> lock(mu_);
  return stream_ != nullptr && !stream_->closed();
}

}  // namespace cairn::tests
