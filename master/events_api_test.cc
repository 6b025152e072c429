// Tests of the history API's event stream (events_api.h): type names and
// subjects, filters, query parsing, framing, the HistoryEventSource over a
// real archive and a fake log, and EventsApi end to end over a real HTTP
// server on 127.0.0.1 (port 0) with a stand-in master thread.
//
// Waits are bounded: a stream read gives up at a deadline, and "the server
// ended the stream" is observed as the end of the chunked body.

#include "master/events_api.h"

#include <condition_variable>
#include <cstdlib>
#include <deque>
#include <functional>
#include <future>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "common/http_client.h"
#include "common/http_server.h"
#include "common/json.h"
#include "common/recordio.h"
#include "gtest/gtest.h"
#include "recovery/archive.h"
#include "recovery/testing/fake_log.h"

namespace cairn::master {
namespace {

using recovery::testing::FakeLog;

constexpr absl::Duration kTimeout = absl::Seconds(5);

// ---- Events -----------------------------------------------------------------

v1::Event AgentRegistered(uint64_t position, uint32_t index,
                          const std::string& agent) {
  v1::Event e;
  e.set_position(position);
  e.set_index(index);
  e.mutable_agent_registered()->mutable_info()->mutable_id()->set_value(agent);
  e.mutable_agent_registered()->mutable_info()->set_hostname("h-" + agent);
  return e;
}

v1::Event TaskUpdated(uint64_t position, uint32_t index,
                      const std::string& framework, const std::string& agent,
                      const std::string& task) {
  v1::Event e;
  e.set_position(position);
  e.set_index(index);
  v1::TaskStatusUpdated* u = e.mutable_task_status_updated();
  u->mutable_framework_id()->set_value(framework);
  u->mutable_status()->mutable_agent_id()->set_value(agent);
  u->mutable_status()->mutable_task_id()->set_value(task);
  u->mutable_status()->set_state(v1::TASK_RUNNING);
  return e;
}

v1::Event WeightsUpdated(uint64_t position, uint32_t index,
                         const std::string& role = "r") {
  v1::Event e;
  e.set_position(position);
  e.set_index(index);
  v1::WeightInfo* w = e.mutable_weights_updated()->add_weights();
  w->set_role(role);
  w->set_weight(2);
  return e;
}

// ---- Type names, subjects, filters
// -------------------------------------------

TEST(EventFilterTest, TypeNamesAreTheOneofFieldNames) {
  EXPECT_EQ(EventTypeName(TaskUpdated(1, 0, "f", "a", "t")),
            "task_status_updated");
  EXPECT_EQ(EventTypeName(v1::Event()), "");
  EXPECT_EQ(EventTypeFromName("agent_removed"), v1::Event::kAgentRemoved);
  EXPECT_EQ(EventTypeFromName("weights_updated"), v1::Event::kWeightsUpdated);
  EXPECT_EQ(EventTypeFromName("AgentRemoved"), std::nullopt);
  EXPECT_EQ(EventTypeFromName("position"), std::nullopt);  // not in the oneof
  const std::vector<std::string> names = AllEventTypeNames();
  ASSERT_FALSE(names.empty());
  EXPECT_EQ(names.front(), "agent_registered");
  for (const std::string& name : names) {
    EXPECT_TRUE(EventTypeFromName(name).has_value()) << name;
  }
}

TEST(EventFilterTest, SubjectsNameTheFrameworkAgentAndTasksOfAnEvent) {
  EventSubjects s = SubjectsOf(TaskUpdated(1, 0, "f1", "a1", "t1"));
  EXPECT_EQ(s.framework_ids, std::vector<std::string>{"f1"});
  EXPECT_EQ(s.agent_ids, std::vector<std::string>{"a1"});
  EXPECT_EQ(s.task_ids, std::vector<std::string>{"t1"});

  v1::Event launched;
  v1::TasksLaunched* l = launched.mutable_tasks_launched();
  l->mutable_framework_id()->set_value("f1");
  for (const char* task : {"t1", "t2"}) {
    v1::TaskInfo* info = l->add_tasks();
    info->mutable_task_id()->set_value(task);
    info->mutable_agent_id()->set_value("a1");
  }
  s = SubjectsOf(launched);
  EXPECT_EQ(s.framework_ids, std::vector<std::string>{"f1"});
  EXPECT_EQ(s.agent_ids, std::vector<std::string>{"a1"});  // once
  EXPECT_EQ(s.task_ids, (std::vector<std::string>{"t1", "t2"}));

  v1::Event offers;
  for (const char* agent : {"a1", "a2"}) {
    v1::Offer* o = offers.mutable_offers_created()->add_offers();
    o->mutable_framework_id()->set_value("f2");
    o->mutable_agent_id()->set_value(agent);
  }
  s = SubjectsOf(offers);
  EXPECT_EQ(s.framework_ids, std::vector<std::string>{"f2"});
  EXPECT_EQ(s.agent_ids, (std::vector<std::string>{"a1", "a2"}));

  s = SubjectsOf(AgentRegistered(1, 0, "a9"));
  EXPECT_EQ(s.agent_ids, std::vector<std::string>{"a9"});
  EXPECT_TRUE(s.framework_ids.empty());

  v1::Event subscribed;
  subscribed.mutable_framework_subscribed()
      ->mutable_info()
      ->mutable_id()
      ->set_value("f3");
  EXPECT_EQ(SubjectsOf(subscribed).framework_ids,
            std::vector<std::string>{"f3"});

  s = SubjectsOf(WeightsUpdated(1, 0));
  EXPECT_TRUE(s.framework_ids.empty() && s.agent_ids.empty() &&
              s.task_ids.empty());
}

TEST(EventFilterTest, EveryConditionMustHold) {
  const v1::Event update = TaskUpdated(1, 0, "f1", "a1", "t1");
  EventFilter filter;
  EXPECT_TRUE(filter.empty());
  EXPECT_TRUE(filter.Matches(update));

  filter.types = {v1::Event::kTaskStatusUpdated, v1::Event::kAgentRemoved};
  EXPECT_TRUE(filter.Matches(update));
  EXPECT_FALSE(filter.Matches(AgentRegistered(1, 0, "a1")));

  filter.agent_id = "a1";
  EXPECT_TRUE(filter.Matches(update));
  filter.framework_id = "f2";
  EXPECT_FALSE(filter.Matches(update));
  filter.framework_id = "f1";
  filter.task_id = "t1";
  EXPECT_TRUE(filter.Matches(update));
  filter.task_id = "t2";
  EXPECT_FALSE(filter.Matches(update));

  EventFilter by_agent;
  by_agent.agent_id = "a1";
  EXPECT_TRUE(by_agent.Matches(AgentRegistered(1, 0, "a1")));
  EXPECT_FALSE(by_agent.Matches(AgentRegistered(1, 0, "a2")));
  EXPECT_FALSE(by_agent.Matches(WeightsUpdated(1, 0)));
}

// ---- Query parsing ----------------------------------------------------------

http::Request Get(const std::string& query, http::Headers headers = {}) {
  http::Request request;
  request.method = "GET";
  request.path = "/api/v1/events";
  request.target = request.path + (query.empty() ? "" : "?" + query);
  request.query = http::ParseQuery(query);
  request.headers = std::move(headers);
  return request;
}

EventsQueryError ErrorOf(const std::variant<EventsQuery, EventsQueryError>& v) {
  if (const auto* e = std::get_if<EventsQueryError>(&v)) return *e;
  ADD_FAILURE() << "parsed, expected an error";
  return {};
}

TEST(ParseEventsQueryTest, DefaultsToTheLiveTailAsRecordIoJson) {
  auto parsed = ParseEventsQuery(Get(""));
  ASSERT_TRUE(std::holds_alternative<EventsQuery>(parsed));
  const EventsQuery& q = std::get<EventsQuery>(parsed);
  EXPECT_EQ(q.from, std::nullopt);
  EXPECT_EQ(q.to, std::nullopt);
  EXPECT_EQ(q.limit, std::nullopt);
  EXPECT_TRUE(q.filter.empty());
  EXPECT_EQ(q.format, StreamFormat::kRecordIoJson);
}

TEST(ParseEventsQueryTest, ReadsEveryParameter) {
  auto parsed = ParseEventsQuery(
      Get("from=5&to=9&limit=3&type=task_status_updated,%20agent_removed"
          "&framework_id=f1&agent_id=a1&task_id=t1",
          {{"Accept", "application/x-protobuf"}}));
  ASSERT_TRUE(std::holds_alternative<EventsQuery>(parsed));
  const EventsQuery& q = std::get<EventsQuery>(parsed);
  EXPECT_EQ(q.from, 5u);
  EXPECT_EQ(q.from_index, 0u);
  EXPECT_EQ(q.to, 9u);
  EXPECT_EQ(q.limit, 3u);
  EXPECT_EQ(q.filter.types.size(), 2u);
  EXPECT_TRUE(q.filter.types.contains(v1::Event::kAgentRemoved));
  EXPECT_EQ(q.filter.framework_id, "f1");
  EXPECT_EQ(q.filter.agent_id, "a1");
  EXPECT_EQ(q.filter.task_id, "t1");
  EXPECT_EQ(q.format, StreamFormat::kRecordIoProtobuf);
}

TEST(ParseEventsQueryTest, LastEventIdResumesRightAfterThatEvent) {
  auto parsed = ParseEventsQuery(Get(
      "from=1", {{"Accept", "text/event-stream"}, {"Last-Event-ID", "42:3"}}));
  ASSERT_TRUE(std::holds_alternative<EventsQuery>(parsed));
  EXPECT_EQ(std::get<EventsQuery>(parsed).from, 42u);
  EXPECT_EQ(std::get<EventsQuery>(parsed).from_index, 4u);
  EXPECT_EQ(std::get<EventsQuery>(parsed).format,
            StreamFormat::kServerSentEvents);

  parsed = ParseEventsQuery(Get("", {{"Last-Event-ID", "42"}}));
  ASSERT_TRUE(std::holds_alternative<EventsQuery>(parsed));
  EXPECT_EQ(std::get<EventsQuery>(parsed).from, 43u);
  EXPECT_EQ(std::get<EventsQuery>(parsed).from_index, 0u);
}

TEST(ParseEventsQueryTest, BadParametersNameTheirField) {
  EXPECT_EQ(ErrorOf(ParseEventsQuery(Get("from=-1"))).field, "from");
  EXPECT_EQ(ErrorOf(ParseEventsQuery(Get("from=1x"))).field, "from");
  EXPECT_EQ(ErrorOf(ParseEventsQuery(Get("to=abc"))).field, "to");
  EXPECT_EQ(ErrorOf(ParseEventsQuery(Get("from=9&to=3"))).field, "to");
  EXPECT_EQ(ErrorOf(ParseEventsQuery(Get("limit=0"))).field, "limit");
  EXPECT_EQ(ErrorOf(ParseEventsQuery(Get("type=task_exploded"))).field, "type");
  EXPECT_EQ(ErrorOf(ParseEventsQuery(Get("type=,"))).field, "type");
  EXPECT_EQ(ErrorOf(ParseEventsQuery(Get("agent_id="))).field, "agent_id");
  const EventsQueryError unknown =
      ErrorOf(ParseEventsQuery(Get("frameworkid=f1")));
  EXPECT_EQ(unknown.status, 400);
  EXPECT_EQ(unknown.field, "frameworkid");
  EXPECT_EQ(
      ErrorOf(ParseEventsQuery(Get("", {{"Last-Event-ID", "x:1"}}))).field,
      "Last-Event-ID");
  const EventsQueryError accept =
      ErrorOf(ParseEventsQuery(Get("", {{"Accept", "text/html"}})));
  EXPECT_EQ(accept.status, 406);
  EXPECT_EQ(accept.field, "Accept");
}

TEST(ParseEventsQueryTest, NegotiatesTheFirstAcceptableFormat) {
  EXPECT_EQ(NegotiateStreamFormat(""), StreamFormat::kRecordIoJson);
  EXPECT_EQ(NegotiateStreamFormat("*/*"), StreamFormat::kRecordIoJson);
  EXPECT_EQ(NegotiateStreamFormat("text/html, application/json;q=0.9"),
            StreamFormat::kRecordIoJson);
  EXPECT_EQ(NegotiateStreamFormat("Text/Event-Stream"),
            StreamFormat::kServerSentEvents);
  EXPECT_EQ(NegotiateStreamFormat("application/x-protobuf, */*"),
            StreamFormat::kRecordIoProtobuf);
  EXPECT_EQ(NegotiateStreamFormat("text/plain"), std::nullopt);
}

TEST(ParseEventIdTest, AcceptsPositionColonIndex) {
  absl::StatusOr<EventCursor> id = ParseEventId("7:2");
  ASSERT_TRUE(id.ok()) << id.status();
  EXPECT_EQ(id->position, 7u);
  EXPECT_EQ(id->index, 2u);
  EXPECT_EQ(ParseEventId("7:").status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ParseEventId("7:99999999999").status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ParseEventId("").status().code(),
            absl::StatusCode::kInvalidArgument);
}

// ---- Framing ----------------------------------------------------------------

std::vector<std::string> Records(const std::string& bytes) {
  recordio::Decoder decoder;
  std::vector<std::string> records;
  EXPECT_TRUE(decoder.Feed(bytes, &records).ok());
  EXPECT_FALSE(decoder.HasPartialRecord());
  return records;
}

TEST(FrameEventTest, ServerSentEventCarriesIdTypeAndJson) {
  absl::StatusOr<std::string> framed = FrameEvent(
      TaskUpdated(12, 3, "f1", "a1", "t1"), StreamFormat::kServerSentEvents);
  ASSERT_TRUE(framed.ok()) << framed.status();
  const std::vector<std::string> lines = absl::StrSplit(*framed, '\n');
  ASSERT_EQ(lines.size(), 5u) << *framed;
  EXPECT_EQ(lines[0], "id: 12:3");
  EXPECT_EQ(lines[1], "event: task_status_updated");
  ASSERT_TRUE(absl::StartsWith(lines[2], "data: {")) << lines[2];
  EXPECT_EQ(lines[3], "");
  EXPECT_EQ(lines[4], "");
  v1::Event parsed;
  ASSERT_TRUE(FromJson(lines[2].substr(6), &parsed).ok());
  EXPECT_EQ(parsed.position(), 12u);
  EXPECT_EQ(parsed.task_status_updated().status().task_id().value(), "t1");
}

TEST(FrameEventTest, RecordIoCarriesJsonOrProtobuf) {
  const v1::Event event = AgentRegistered(4, 1, "a1");
  absl::StatusOr<std::string> json =
      FrameEvent(event, StreamFormat::kRecordIoJson);
  ASSERT_TRUE(json.ok());
  std::vector<std::string> records = Records(*json);
  ASSERT_EQ(records.size(), 1u);
  v1::Event parsed;
  ASSERT_TRUE(FromJson(records[0], &parsed).ok()) << records[0];
  EXPECT_EQ(parsed.SerializeAsString(), event.SerializeAsString());
  // 64-bit integers are JSON numbers, as in Mesos's JSON.
  EXPECT_TRUE(absl::StrContains(records[0], R"("position":4,)")) << records[0];

  absl::StatusOr<std::string> proto =
      FrameEvent(event, StreamFormat::kRecordIoProtobuf);
  ASSERT_TRUE(proto.ok());
  records = Records(*proto);
  ASSERT_EQ(records.size(), 1u);
  EXPECT_EQ(records[0], event.SerializeAsString());
}

TEST(FrameEventTest, HeartbeatsAndEnds) {
  EXPECT_EQ(FrameHeartbeat(StreamFormat::kServerSentEvents), ": heartbeat\n\n");
  EXPECT_EQ(Records(FrameHeartbeat(StreamFormat::kRecordIoJson)),
            std::vector<std::string>{""});

  LostPositions lost;
  lost.first = 6;
  lost.last = 10;
  lost.oldest_retained = 1;
  lost.message = "gap";
  EXPECT_EQ(EndJson(EndReason::kLost, "gap", lost),
            "{\"reason\":\"lost\",\"error\":\"gap\",\"oldest_retained_"
            "position\":1,\"lost\":{\"first\":6,\"last\":10},\"resume_from\":"
            "11}");
  EXPECT_EQ(FrameEnd(StreamFormat::kRecordIoJson, EndReason::kComplete, "",
                     std::nullopt),
            "");
  const std::vector<std::string> end = Records(
      FrameEnd(StreamFormat::kRecordIoProtobuf, EndReason::kLost, "gap", lost));
  ASSERT_EQ(end.size(), 1u);
  v1::Event not_an_event;
  EXPECT_FALSE(not_an_event.ParseFromString(end[0]));
  EXPECT_EQ(FrameEnd(StreamFormat::kServerSentEvents, EndReason::kLimit, "",
                     std::nullopt),
            "event: end\ndata: {\"reason\":\"limit\"}\n\n");
  EXPECT_TRUE(
      absl::StartsWith(FrameEnd(StreamFormat::kServerSentEvents,
                                EndReason::kSlowClient, "slow", std::nullopt),
                       ": closing"));
}

// ---- HistoryEventSource
// -------------------------------------------------------

std::string FreshDir() {
  const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
  std::string dir = absl::StrCat(::testing::TempDir(), "/events-",
                                 info->test_suite_name(), "-", info->name());
  std::system(("rm -rf '" + dir + "'").c_str());
  return dir;
}

// Writes positions [first, last] of `events` (sorted) as one segment.
void ArchiveRange(recovery::Archive* archive,
                  const std::vector<v1::Event>& events, uint64_t first,
                  uint64_t last) {
  std::vector<recovery::ArchivedEntry> entries;
  for (const v1::Event& e : events) {
    if (e.position() < first || e.position() > last) continue;
    entries.push_back({e.position(), e.index(), absl::FromUnixSeconds(0),
                       e.SerializeAsString()});
  }
  ASSERT_TRUE(archive->WriteSegment(first, last, entries).ok());
}

std::vector<std::pair<uint64_t, uint32_t>> Ids(const EventPage& page) {
  std::vector<std::pair<uint64_t, uint32_t>> ids;
  for (const auto& e : page.entries) ids.emplace_back(e.position, e.index);
  return ids;
}

class HistoryEventSourceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto archive = recovery::Archive::Open(FreshDir() + "/archive");
    ASSERT_TRUE(archive.ok()) << archive.status();
    archive_ = *std::move(archive);
    // Positions 1..20, two events at even positions, none at 15 (a no-op).
    for (uint64_t p = 1; p <= 20; ++p) {
      if (p == 15) continue;
      events_.push_back(WeightsUpdated(p, 0));
      if (p % 2 == 0) events_.push_back(AgentRegistered(p, 1, "a"));
    }
    for (const v1::Event& e : events_) log_.Append(e);
    log_.LearnThrough(20);
    source_ = std::make_unique<HistoryEventSource>(archive_.get(), &log_,
                                                   [this] { return applied_; });
  }

  std::unique_ptr<recovery::Archive> archive_;
  FakeLog log_;
  std::vector<v1::Event> events_;
  uint64_t applied_ = 20;
  std::unique_ptr<HistoryEventSource> source_;
};

TEST_F(HistoryEventSourceTest, PagesAreBoundedByPositionsAndCappedAtApplied) {
  applied_ = 12;
  absl::StatusOr<EventPage> page = source_->Read(1, 1000, 4);
  ASSERT_TRUE(page.ok()) << page.status();
  EXPECT_EQ(page->next, 5u);
  EXPECT_EQ(page->applied, 12u);
  EXPECT_FALSE(page->lost.has_value());
  EXPECT_EQ(Ids(*page), (std::vector<std::pair<uint64_t, uint32_t>>{
                            {1, 0}, {2, 0}, {2, 1}, {3, 0}, {4, 0}, {4, 1}}));
  page = source_->Read(9, 1000, 100);
  ASSERT_TRUE(page.ok());
  EXPECT_EQ(page->next, 13u);  // not beyond applied
  page = source_->Read(13, 1000, 100);
  ASSERT_TRUE(page.ok());
  EXPECT_EQ(page->next, 13u);
  EXPECT_TRUE(page->entries.empty());
  page = source_->Read(3, 3, 100);
  ASSERT_TRUE(page.ok());
  EXPECT_EQ(page->next, 4u);
  EXPECT_EQ(Ids(*page), (std::vector<std::pair<uint64_t, uint32_t>>{{3, 0}}));
}

TEST_F(HistoryEventSourceTest, ReadsTheArchiveThenTheLog) {
  ArchiveRange(archive_.get(), events_, 1, 10);
  log_.Truncate(11);
  EXPECT_EQ(*source_->OldestRetained(), 1u);
  absl::StatusOr<EventPage> page = source_->Read(1, 1000, 100);
  ASSERT_TRUE(page.ok()) << page.status();
  EXPECT_EQ(page->next, 21u);
  EXPECT_FALSE(page->lost.has_value());
  ASSERT_EQ(page->entries.size(), events_.size());
  for (size_t i = 0; i < events_.size(); ++i) {
    EXPECT_EQ(page->entries[i].position, events_[i].position());
    EXPECT_EQ(page->entries[i].index, events_[i].index());
  }
}

TEST_F(HistoryEventSourceTest, PositionsBelowTheOldestAreLost) {
  log_.Truncate(8);
  EXPECT_EQ(*source_->OldestRetained(), 8u);
  absl::StatusOr<EventPage> page = source_->Read(3, 1000, 100);
  ASSERT_TRUE(page.ok()) << page.status();
  EXPECT_EQ(page->next, 3u);
  EXPECT_TRUE(page->entries.empty());
  ASSERT_TRUE(page->lost.has_value());
  EXPECT_EQ(page->lost->first, 3u);
  EXPECT_EQ(page->lost->last, 7u);
  EXPECT_EQ(page->lost->oldest_retained, 8u);
  EXPECT_TRUE(page->lost->below_oldest);
  EXPECT_TRUE(absl::StrContains(page->lost->message,
                                "oldest retained "
                                "position is 8"))
      << page->lost->message;
}

TEST_F(HistoryEventSourceTest, AGapBetweenArchiveAndLogIsNamed) {
  ArchiveRange(archive_.get(), events_, 1, 5);
  log_.Truncate(11);
  absl::StatusOr<EventPage> page = source_->Read(1, 1000, 100);
  ASSERT_TRUE(page.ok()) << page.status();
  EXPECT_EQ(page->next, 6u);  // stops where the gap begins
  EXPECT_EQ(page->entries.back().position, 5u);
  ASSERT_TRUE(page->lost.has_value());
  EXPECT_EQ(page->lost->first, 6u);
  EXPECT_EQ(page->lost->last, 10u);
  EXPECT_FALSE(page->lost->below_oldest);
  EXPECT_EQ(page->lost->oldest_retained, 1u);
  page = source_->Read(11, 1000, 100);
  ASSERT_TRUE(page.ok());
  EXPECT_FALSE(page->lost.has_value());
  EXPECT_EQ(page->entries.front().position, 11u);
}

TEST_F(HistoryEventSourceTest, ARecordedGapIsLostWithItsReason) {
  ArchiveRange(archive_.get(), events_, 1, 3);
  ASSERT_TRUE(archive_
                  ->RecordGap(4, 8, "installed a peer's snapshot",
                              absl::FromUnixSeconds(1700000000))
                  .ok());
  log_.Truncate(7);  // the log still holds 7 and 8, inside the gap
  absl::StatusOr<EventPage> page = source_->Read(1, 1000, 100);
  ASSERT_TRUE(page.ok()) << page.status();
  EXPECT_EQ(page->next, 4u);
  ASSERT_TRUE(page->lost.has_value());
  EXPECT_EQ(page->lost->first, 4u);
  EXPECT_EQ(page->lost->last, 6u);  // the log has the rest
  EXPECT_TRUE(
      absl::StrContains(page->lost->message, "installed a peer's snapshot"))
      << page->lost->message;
  EXPECT_TRUE(absl::StrContains(page->lost->message, "other masters"))
      << page->lost->message;
  page = source_->Read(7, 1000, 100);
  ASSERT_TRUE(page.ok()) << page.status();
  EXPECT_FALSE(page->lost.has_value());
  EXPECT_EQ(page->entries.front().position, 7u);
  EXPECT_EQ(page->next, 21u);
}

TEST_F(HistoryEventSourceTest, AGapAtTheStartIsBelowTheOldestRetained) {
  ASSERT_TRUE(archive_->RecordGap(1, 10, "wiped", absl::Now()).ok());
  log_.Truncate(11);
  EXPECT_EQ(*source_->OldestRetained(), 11u);
  absl::StatusOr<EventPage> page = source_->Read(2, 1000, 100);
  ASSERT_TRUE(page.ok()) << page.status();
  ASSERT_TRUE(page->lost.has_value());
  EXPECT_TRUE(page->lost->below_oldest);
  EXPECT_EQ(page->lost->last, 10u);
  EXPECT_TRUE(absl::StrContains(page->lost->message, "wiped"));
}

// ---- EventsApi over HTTP ----------------------------------------------------

// Stands in for the master thread: runs posted work in order.
class MasterThread {
 public:
  MasterThread() : thread_([this] { Run(); }) {}
  ~MasterThread() { Stop(); }

  void Post(std::function<void()> work) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (stopping_) return;
      queue_.push_back(std::move(work));
    }
    cv_.notify_all();
  }
  // Runs `work` on the thread and waits for it.
  void Run(std::function<void()> work) {
    std::promise<void> done;
    Post([&] {
      work();
      done.set_value();
    });
    done.get_future().wait();
  }
  void Stop() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stopping_ = true;
    }
    cv_.notify_all();
    if (thread_.joinable()) thread_.join();
  }

 private:
  void Run() {
    for (;;) {
      std::function<void()> work;
      {
        std::unique_lock<std::mutex> lock(mu_);
        cv_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
        if (stopping_) return;
        work = std::move(queue_.front());
        queue_.pop_front();
      }
      work();
    }
  }

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> queue_;
  bool stopping_ = false;
  std::thread thread_;
};

// A stream's body as read so far.
struct Body {
  std::unique_ptr<http::ClientStream> stream;
  std::string bytes;
  bool ended = false;
  absl::Status error;

  // Reads until `done(bytes)`, the end of the stream or the deadline.
  bool ReadUntil(const std::function<bool(const std::string&)>& done,
                 absl::Duration timeout = kTimeout) {
    const absl::Time deadline = absl::Now() + timeout;
    while (!done(bytes)) {
      if (ended || !error.ok() || absl::Now() >= deadline) return false;
      absl::StatusOr<std::optional<std::string>> chunk =
          stream->NextChunk(absl::Milliseconds(50));
      if (absl::IsDeadlineExceeded(chunk.status())) continue;
      if (!chunk.ok()) {
        error = chunk.status();
        return false;
      }
      if (!chunk->has_value()) {
        ended = true;
        continue;
      }
      bytes += **chunk;
    }
    return true;
  }
  bool ReadToEnd(absl::Duration timeout = kTimeout) {
    ReadUntil([this](const std::string&) { return ended; }, timeout);
    return ended;
  }
};

// RecordIO records split into events (JSON) and non-event records.
struct Decoded {
  std::vector<v1::Event> events;
  std::vector<std::string> others;  // end records
  int heartbeats = 0;
};

Decoded DecodeJsonRecords(const std::string& bytes) {
  Decoded out;
  recordio::Decoder decoder;
  std::vector<std::string> records;
  EXPECT_TRUE(decoder.Feed(bytes, &records).ok());
  for (const std::string& r : records) {
    if (r.empty()) {
      ++out.heartbeats;
      continue;
    }
    v1::Event event;
    if (absl::StrContains(r, "\"reason\"") || !FromJson(r, &event).ok()) {
      out.others.push_back(r);
    } else {
      out.events.push_back(event);
    }
  }
  return out;
}

size_t CountEvents(const std::string& bytes) {
  return DecodeJsonRecords(bytes).events.size();
}

// One SSE message (blank-line separated).
struct SseMessage {
  std::string id, event, data;
  std::vector<std::string> comments;
};

std::vector<SseMessage> ParseSse(const std::string& bytes) {
  std::vector<SseMessage> out;
  for (absl::string_view block : absl::StrSplit(bytes, "\n\n")) {
    if (block.empty()) continue;
    SseMessage m;
    for (absl::string_view line : absl::StrSplit(block, '\n')) {
      if (absl::ConsumePrefix(&line, ":")) {
        m.comments.emplace_back(line);
      } else if (absl::ConsumePrefix(&line, "id: ")) {
        m.id = std::string(line);
      } else if (absl::ConsumePrefix(&line, "event: ")) {
        m.event = std::string(line);
      } else if (absl::ConsumePrefix(&line, "data: ")) {
        m.data = std::string(line);
      }
    }
    out.push_back(std::move(m));
  }
  return out;
}

class EventsApiTest : public ::testing::Test {
 protected:
  void Start(EventsApiOptions options = {}) {
    auto archive = recovery::Archive::Open(FreshDir() + "/archive");
    ASSERT_TRUE(archive.ok()) << archive.status();
    archive_ = *std::move(archive);
    options.master_address = "127.0.0.1:5050";
    api_ = std::make_unique<EventsApi>(
        options,
        std::make_unique<HistoryEventSource>(archive_.get(), &log_,
                                             [this] { return applied_; }),
        [this](std::function<void()> work) { master_.Post(std::move(work)); },
        [] { return std::string("standby"); });
    server_ = std::make_unique<http::Server>();
    server_->Handle(
        "GET", "/api/v1/events",
        [this](http::Request request, std::shared_ptr<http::Responder> r) {
          api_->Handle(std::move(request), std::move(r));
        });
    ASSERT_TRUE(server_->Start().ok());
  }

  void TearDown() override {
    if (server_) server_->Stop();
    master_.Stop();
    api_.reset();
  }

  // Folds `events` (one position's worth or more) on the master thread.
  void Fold(const std::vector<v1::Event>& events) {
    master_.Run([&] {
      for (const v1::Event& e : events) {
        log_.Append(e);
        log_.LearnThrough(e.position());
        applied_ = std::max(applied_, e.position());
        all_.push_back(e);
        api_->OnApplied(e);
      }
    });
  }

  // Positions 1..n: a weights update, and at even positions an agent too.
  void FoldHistory(uint64_t n) {
    std::vector<v1::Event> events;
    for (uint64_t p = 1; p <= n; ++p) {
      events.push_back(WeightsUpdated(p, 0));
      if (p % 2 == 0)
        events.push_back(AgentRegistered(p, 1, absl::StrCat("a", p)));
    }
    Fold(events);
  }

  absl::StatusOr<http::Response> Request(const std::string& target,
                                         http::Headers headers = {}) {
    http::Client client;
    return client.Request("GET", "127.0.0.1", server_->port(), target, headers);
  }

  Body Open(const std::string& target, http::Headers headers = {}) {
    http::Client client;
    absl::StatusOr<std::unique_ptr<http::ClientStream>> stream =
        client.OpenStream("GET", "127.0.0.1", server_->port(), target, headers);
    Body body;
    EXPECT_TRUE(stream.ok()) << stream.status();
    if (stream.ok()) body.stream = *std::move(stream);
    return body;
  }

  bool WaitForStreams(size_t n) {
    const absl::Time deadline = absl::Now() + kTimeout;
    while (api_->active_streams() != n) {
      if (absl::Now() >= deadline) return false;
      absl::SleepFor(absl::Milliseconds(5));
    }
    return true;
  }

  MasterThread master_;
  std::unique_ptr<recovery::Archive> archive_;
  FakeLog log_;           // master thread only
  uint64_t applied_ = 0;  // master thread only
  std::vector<v1::Event> all_;
  std::unique_ptr<EventsApi> api_;
  std::unique_ptr<http::Server> server_;
};

TEST_F(EventsApiTest, FromOneStreamsEveryEventInOrderThroughTo) {
  EventsApiOptions options;
  options.page_positions = 3;  // many pages
  Start(options);
  FoldHistory(10);
  Body body = Open("/api/v1/events?from=1&to=10");
  ASSERT_EQ(body.stream->status(), 200);
  EXPECT_EQ(body.stream->headers().Get("Content-Type"), "application/recordio");
  EXPECT_EQ(body.stream->headers().Get("Message-Content-Type"),
            "application/json");
  EXPECT_EQ(body.stream->headers().Get("X-Cairn-Master"), "127.0.0.1:5050");
  EXPECT_EQ(body.stream->headers().Get("X-Cairn-Master-Role"), "standby");
  EXPECT_EQ(body.stream->headers().Get("X-Cairn-Applied-Position"), "10");
  ASSERT_TRUE(body.ReadToEnd());
  const Decoded decoded = DecodeJsonRecords(body.bytes);
  EXPECT_TRUE(decoded.others.empty());
  ASSERT_EQ(decoded.events.size(), all_.size());
  for (size_t i = 0; i < all_.size(); ++i) {
    EXPECT_EQ(decoded.events[i].SerializeAsString(),
              all_[i].SerializeAsString());
  }
}

TEST_F(EventsApiTest, FromZeroStartsAtTheOldestRetainedPosition) {
  Start();
  FoldHistory(10);
  master_.Run([&] { log_.Truncate(4); });
  Body body = Open("/api/v1/events?from=0&to=10");
  ASSERT_EQ(body.stream->status(), 200);
  EXPECT_EQ(body.stream->headers().Get("X-Cairn-Oldest-Retained-Position"),
            "4");
  EXPECT_EQ(body.stream->headers().Get("X-Cairn-Stream-Start"), "4");
  ASSERT_TRUE(body.ReadToEnd());
  const Decoded decoded = DecodeJsonRecords(body.bytes);
  ASSERT_FALSE(decoded.events.empty());
  EXPECT_EQ(decoded.events.front().position(), 4u);
  EXPECT_EQ(decoded.events.back().position(), 10u);
}

TEST_F(EventsApiTest, FiltersByTypeAndIds) {
  Start();
  Fold({AgentRegistered(1, 0, "a1"), AgentRegistered(1, 1, "a2"),
        TaskUpdated(2, 0, "f1", "a1", "t1"),
        TaskUpdated(2, 1, "f1", "a2", "t2"),
        TaskUpdated(3, 0, "f2", "a1", "t3"), WeightsUpdated(4, 0)});
  auto positions = [&](const std::string& query) {
    Body body = Open("/api/v1/events?from=1&to=4&" + query);
    EXPECT_TRUE(body.ReadToEnd());
    std::vector<std::string> ids;
    for (const v1::Event& e : DecodeJsonRecords(body.bytes).events) {
      ids.push_back(absl::StrCat(e.position(), ":", e.index()));
    }
    return ids;
  };
  EXPECT_EQ(positions("agent_id=a1"),
            (std::vector<std::string>{"1:0", "2:0", "3:0"}));
  EXPECT_EQ(positions("type=task_status_updated&agent_id=a1"),
            (std::vector<std::string>{"2:0", "3:0"}));
  EXPECT_EQ(positions("framework_id=f1"),
            (std::vector<std::string>{"2:0", "2:1"}));
  EXPECT_EQ(positions("task_id=t2"), (std::vector<std::string>{"2:1"}));
  EXPECT_EQ(positions("type=weights_updated,agent_registered"),
            (std::vector<std::string>{"1:0", "1:1", "4:0"}));
  EXPECT_EQ(positions("type=task_status_updated&limit=2"),
            (std::vector<std::string>{"2:0", "2:1"}));
}

TEST_F(EventsApiTest, AnswersGoneNamingTheOldestRetainedPosition) {
  Start();
  FoldHistory(10);
  master_.Run([&] { log_.Truncate(6); });
  absl::StatusOr<http::Response> r = Request("/api/v1/events?from=2");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->status, 410);
  EXPECT_TRUE(absl::StrContains(r->body, "\"oldest_retained_position\":6"))
      << r->body;
  EXPECT_TRUE(absl::StrContains(r->body, "\"lost\":{\"first\":2,\"last\":5}"))
      << r->body;
  r = Request("/api/v1/events?from=6&to=6");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->status, 200);
}

TEST_F(EventsApiTest, AGapEndsTheStreamExplicitlyAndIsGoneToStartIn) {
  Start();
  FoldHistory(10);
  master_.Run([&] {
    ArchiveRange(archive_.get(), all_, 1, 3);
    log_.Truncate(7);
  });
  absl::StatusOr<http::Response> r = Request("/api/v1/events?from=5");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->status, 410);
  EXPECT_TRUE(absl::StrContains(r->body, "\"lost\":{\"first\":4,\"last\":6}"))
      << r->body;
  EXPECT_TRUE(absl::StrContains(r->body, "gap")) << r->body;

  Body body = Open("/api/v1/events?from=1");
  ASSERT_EQ(body.stream->status(), 200);
  ASSERT_TRUE(body.ReadToEnd());
  const Decoded decoded = DecodeJsonRecords(body.bytes);
  ASSERT_FALSE(decoded.events.empty());
  EXPECT_EQ(decoded.events.back().position(), 3u);
  ASSERT_EQ(decoded.others.size(), 1u);
  EXPECT_TRUE(absl::StrContains(decoded.others[0], "\"reason\":\"lost\""));
  EXPECT_TRUE(absl::StrContains(decoded.others[0], "\"resume_from\":7"))
      << decoded.others[0];
}

TEST_F(EventsApiTest, ARecordedGapIsGoneWithItsReason) {
  Start();
  FoldHistory(10);
  master_.Run([&] {
    ArchiveRange(archive_.get(), all_, 1, 3);
    ASSERT_TRUE(archive_
                    ->RecordGap(4, 6, "this master was away",
                                absl::FromUnixSeconds(1700000000))
                    .ok());
    log_.Truncate(7);
  });
  absl::StatusOr<http::Response> r = Request("/api/v1/events?from=4");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->status, 410);
  EXPECT_TRUE(absl::StrContains(r->body, "\"lost\":{\"first\":4,\"last\":6}"))
      << r->body;
  EXPECT_TRUE(absl::StrContains(r->body, "this master was away")) << r->body;
  r = Request("/api/v1/events?from=7&to=10");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->status, 200);
}

TEST_F(EventsApiTest, ServerSentEventsResumeAfterLastEventId) {
  Start();
  FoldHistory(6);
  Body body = Open("/api/v1/events?from=1&to=6",
                   {{"Accept", "text/event-stream"}, {"Last-Event-ID", "4:0"}});
  ASSERT_EQ(body.stream->status(), 200);
  EXPECT_EQ(body.stream->headers().Get("Content-Type"), "text/event-stream");
  ASSERT_TRUE(body.ReadToEnd());
  std::vector<std::string> ids;
  std::string last_event;
  for (const SseMessage& m : ParseSse(body.bytes)) {
    if (!m.id.empty()) {
      ids.push_back(m.id);
      v1::Event parsed;
      EXPECT_TRUE(FromJson(m.data, &parsed).ok()) << m.data;
      EXPECT_EQ(m.id, absl::StrCat(parsed.position(), ":", parsed.index()));
      EXPECT_EQ(m.event, EventTypeName(parsed));
    }
    if (!m.event.empty()) last_event = m.event;
  }
  EXPECT_EQ(ids, (std::vector<std::string>{"4:1", "5:0", "6:0", "6:1"}));
  EXPECT_EQ(last_event, "end");
}

TEST_F(EventsApiTest, FollowsLiveEventsAfterCatchingUpWithoutGapOrDuplicate) {
  EventsApiOptions options;
  options.page_positions = 2;
  Start(options);
  FoldHistory(5);
  Body body = Open("/api/v1/events?from=1");
  ASSERT_EQ(body.stream->status(), 200);
  const size_t history = all_.size();
  ASSERT_TRUE(body.ReadUntil(
      [&](const std::string& b) { return CountEvents(b) == history; }));
  // New events while the stream waits, and more in quick succession.
  Fold({TaskUpdated(6, 0, "f", "a", "t")});
  ASSERT_TRUE(body.ReadUntil(
      [&](const std::string& b) { return CountEvents(b) == history + 1; }));
  for (uint64_t p = 7; p <= 30; ++p) Fold({WeightsUpdated(p, 0)});
  ASSERT_TRUE(body.ReadUntil([&](const std::string& b) {
    return CountEvents(b) == all_.size();
  })) << CountEvents(body.bytes)
      << " of " << all_.size();
  const Decoded decoded = DecodeJsonRecords(body.bytes);
  ASSERT_EQ(decoded.events.size(), all_.size());
  for (size_t i = 0; i < all_.size(); ++i) {
    EXPECT_EQ(decoded.events[i].position(), all_[i].position());
    EXPECT_EQ(decoded.events[i].index(), all_[i].index());
  }
}

TEST_F(EventsApiTest, WithoutFromOnlyNewEventsAreSent) {
  Start();
  FoldHistory(5);
  Body body = Open("/api/v1/events", {{"Accept", "application/x-protobuf"}});
  ASSERT_EQ(body.stream->status(), 200);
  EXPECT_EQ(body.stream->headers().Get("X-Cairn-Stream-Start"), "6");
  EXPECT_EQ(body.stream->headers().Get("Message-Content-Type"),
            "application/x-protobuf");
  Fold({WeightsUpdated(6, 0, "new")});
  std::vector<std::string> records;
  ASSERT_TRUE(body.ReadUntil([&](const std::string& b) {
    recordio::Decoder decoder;
    records.clear();
    decoder.Feed(b, &records).IgnoreError();
    return !records.empty();
  }));
  v1::Event event;
  ASSERT_TRUE(event.ParseFromString(records[0]));
  EXPECT_EQ(event.position(), 6u);
  EXPECT_EQ(event.weights_updated().weights(0).role(), "new");
}

TEST_F(EventsApiTest, LiveStreamEndsAtTo) {
  Start();
  FoldHistory(2);
  Body body = Open("/api/v1/events?from=2&to=4");
  ASSERT_EQ(body.stream->status(), 200);
  Fold({WeightsUpdated(3, 0)});
  Fold({WeightsUpdated(4, 0), WeightsUpdated(5, 0)});
  ASSERT_TRUE(body.ReadToEnd());
  const Decoded decoded = DecodeJsonRecords(body.bytes);
  ASSERT_EQ(decoded.events.size(), 4u);  // 2:0 2:1 3:0 4:0
  EXPECT_EQ(decoded.events.back().position(), 4u);
  EXPECT_TRUE(decoded.others.empty());
}

TEST_F(EventsApiTest, IdleStreamsGetHeartbeats) {
  EventsApiOptions options;
  options.heartbeat_interval = absl::Milliseconds(50);
  Start(options);
  Body sse = Open("/api/v1/events", {{"Accept", "text/event-stream"}});
  ASSERT_TRUE(sse.ReadUntil([](const std::string& b) {
    return absl::StrContains(b, ": heartbeat\n\n");
  }));
  Body recordio = Open("/api/v1/events");
  ASSERT_TRUE(recordio.ReadUntil([](const std::string& b) {
    return DecodeJsonRecords(b).heartbeats >= 1;
  }));
}

TEST_F(EventsApiTest, RefusesStreamsBeyondTheMaximum) {
  EventsApiOptions options;
  options.max_streams = 1;
  Start(options);
  Body first = Open("/api/v1/events");
  ASSERT_EQ(first.stream->status(), 200);
  absl::StatusOr<http::Response> r = Request("/api/v1/events");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->status, 503);
  EXPECT_EQ(r->headers.Get("Retry-After"), "5");
  first.stream.reset();  // the client goes away
  ASSERT_TRUE(WaitForStreams(0));
  r = Request("/api/v1/events?to=0");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->status, 200);
}

TEST_F(EventsApiTest, BadRequestsAreAnsweredBeforeStreaming) {
  Start();
  absl::StatusOr<http::Response> r = Request("/api/v1/events?from=x");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->status, 400);
  EXPECT_TRUE(absl::StrContains(r->body, "\"field\":\"from\"")) << r->body;
  r = Request("/api/v1/events", {{"Accept", "text/html"}});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->status, 406);
  EXPECT_EQ(api_->active_streams(), 0u);
}

TEST_F(EventsApiTest, ASlowClientIsDisconnectedNotBufferedFor) {
  EventsApiOptions options;
  options.page_positions = 4;
  options.max_queued_bytes = 64 << 10;
  options.flush_bytes = 16 << 10;
  options.slow_client_timeout = absl::Milliseconds(200);
  Start(options);
  // ~24 MiB of history: more than the kernel's socket buffers hold.
  std::vector<v1::Event> events;
  for (uint64_t p = 1; p <= 384; ++p) {
    v1::Event e = WeightsUpdated(p, 0);
    e.set_principal(std::string(64 << 10, 'x'));
    events.push_back(e);
  }
  Fold(events);
  Body body = Open("/api/v1/events?from=1");
  ASSERT_EQ(body.stream->status(), 200);
  // The client reads nothing: the stream ends on its own.
  ASSERT_TRUE(WaitForStreams(0));
  ASSERT_TRUE(body.ReadToEnd(absl::Seconds(10)));
  const Decoded decoded = DecodeJsonRecords(body.bytes);
  EXPECT_LT(decoded.events.size(), events.size());
  ASSERT_EQ(decoded.others.size(), 1u);
  EXPECT_TRUE(absl::StrContains(decoded.others[0], "slow_client"))
      << decoded.others[0];
}

}  // namespace
}  // namespace cairn::master
