// framer.cpp — see framer.hpp.
#include "control/ovsdb/framer.hpp"

namespace gl::ovsdb {

namespace {

bool is_json_space(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

}  // namespace

void JsonFramer::reset() {
  buf_.clear();
  scan_ = 0;
  depth_ = 0;
  in_string_ = false;
  escape_ = false;
  status_ = Status::kOk;
  error_.clear();
}

JsonFramer::Status JsonFramer::fail(Status s, std::string why) {
  status_ = s;
  error_ = std::move(why);
  buf_.clear();
  scan_ = 0;
  return s;
}

JsonFramer::Status JsonFramer::feed(std::string_view data, std::vector<nlohmann::json>& out) {
  if (status_ != Status::kOk) return status_;
  buf_.append(data);

  size_t start = 0;  // first byte of the message being scanned (valid when depth_ > 0)
  size_t i = scan_;
  const size_t n = buf_.size();
  while (i < n) {
    const char c = buf_[i];
    if (depth_ == 0) {
      if (is_json_space(c)) {
        ++i;
        start = i;
        continue;
      }
      if (c != '{') {
        return fail(
            Status::kMalformed,
            std::string("expected '{' at the start of a message, got ") +
                (c >= 0x20 && c < 0x7f ? std::string(1, c) : "byte " + std::to_string(uint8_t(c))));
      }
      start = i;
      depth_ = 1;
      ++i;
      continue;
    }
    if (in_string_) {
      if (escape_) {
        escape_ = false;
      } else if (c == '\\') {
        escape_ = true;
      } else if (c == '"') {
        in_string_ = false;
      }
      ++i;
      continue;
    }
    switch (c) {
      case '"':
        in_string_ = true;
        break;
      case '{':
      case '[':
        if (++depth_ > kMaxDepth) {
          return fail(Status::kMalformed,
                      "nesting deeper than " + std::to_string(kMaxDepth) + " levels");
        }
        break;
      case '}':
      case ']':
        if (--depth_ == 0) {
          const std::string_view text(buf_.data() + start, i + 1 - start);
          if (text.size() > max_message_) {
            return fail(Status::kOverflow, "message of " + std::to_string(text.size()) +
                                               " bytes exceeds the cap of " +
                                               std::to_string(max_message_));
          }
          nlohmann::json msg = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
          if (msg.is_discarded() || !msg.is_object()) {
            return fail(Status::kMalformed, "a message is not valid JSON");
          }
          out.push_back(std::move(msg));
          start = i + 1;
        }
        break;
      default:
        break;
    }
    ++i;
  }
  // An incomplete message already over the cap will not shrink: give up now rather than
  // buffer up to the end of it (the buffer stays under cap + one read).
  if (depth_ > 0 && n - start > max_message_) {
    return fail(Status::kOverflow,
                "message exceeds the cap of " + std::to_string(max_message_) + " bytes");
  }
  // Keep only the incomplete message (or nothing when between messages).
  if (depth_ == 0) {
    buf_.clear();
    scan_ = 0;
  } else {
    buf_.erase(0, start);
    scan_ = i - start;
  }
  return Status::kOk;
}

}  // namespace gl::ovsdb
