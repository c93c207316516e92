// log.hpp — glctld's log: one timestamped line per event, to stderr or a file.
//
// Purpose: the daemon's two threads (the io_context thread and the gldp sync thread) log
// through one Logger: "2024-05-01T12:00:00.123Z glctld INFO pushed generation 7 ...".
// --log-file appends to a file (created 0600); without it lines go to stderr.
// Thread-safety: write() may be called from any thread (one lock per line).
// Complexity: O(length of the line).
#pragma once

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <expected>
#include <mutex>
#include <string>
#include <string_view>

namespace gl::glctld {

enum class LogLevel : uint8_t { kDebug, kInfo, kWarn, kError };

std::string_view log_level_name(LogLevel level);

// "2024-05-01T12:00:00.123Z".
std::string iso8601_utc(std::chrono::system_clock::time_point t);

class Logger {
 public:
  Logger() = default;  // stderr
  ~Logger();
  Logger(const Logger&) = delete;
  Logger& operator=(const Logger&) = delete;

  // Appends to `path` from now on; the error names the file and the reason.
  std::expected<void, std::string> open(const std::string& path);
  void set_min_level(LogLevel level) { min_level_ = level; }

  void write(LogLevel level, std::string_view text);
  void debug(std::string_view text) { write(LogLevel::kDebug, text); }
  void info(std::string_view text) { write(LogLevel::kInfo, text); }
  void warn(std::string_view text) { write(LogLevel::kWarn, text); }
  void error(std::string_view text) { write(LogLevel::kError, text); }

 private:
  std::mutex mu_;
  FILE* file_ = nullptr;  // nullptr: stderr
  LogLevel min_level_ = LogLevel::kInfo;
};

}  // namespace gl::glctld
