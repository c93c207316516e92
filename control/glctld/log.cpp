#include "control/glctld/log.hpp"

#include <fcntl.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace gl::glctld {

std::string_view log_level_name(LogLevel level) {
  switch (level) {
    case LogLevel::kDebug:
      return "DBG";
    case LogLevel::kInfo:
      return "INFO";
    case LogLevel::kWarn:
      return "WARN";
    case LogLevel::kError:
      return "ERR";
  }
  return "?";
}

std::string iso8601_utc(std::chrono::system_clock::time_point t) {
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch());
  const time_t secs = static_cast<time_t>(ms.count() / 1000);
  tm parts{};
  gmtime_r(&secs, &parts);
  char buf[96];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", parts.tm_year + 1900,
                parts.tm_mon + 1, parts.tm_mday, parts.tm_hour, parts.tm_min, parts.tm_sec,
                static_cast<int>(ms.count() % 1000));
  return buf;
}

Logger::~Logger() {
  if (file_ != nullptr) std::fclose(file_);
}

std::expected<void, std::string> Logger::open(const std::string& path) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  if (fd < 0) return std::unexpected("cannot open log file " + path + ": " + std::strerror(errno));
  FILE* f = ::fdopen(fd, "a");
  if (f == nullptr) {
    ::close(fd);
    return std::unexpected("cannot open log file " + path + ": " + std::strerror(errno));
  }
  std::lock_guard lock(mu_);
  if (file_ != nullptr) std::fclose(file_);
  file_ = f;
  return {};
}

void Logger::write(LogLevel level, std::string_view text) {
  if (level < min_level_) return;
  std::string line = iso8601_utc(std::chrono::system_clock::now());
  line += " glctld ";
  line += log_level_name(level);
  line += ' ';
  line += text;
  line += '\n';
  std::lock_guard lock(mu_);
  FILE* f = file_ != nullptr ? file_ : stderr;
  std::fwrite(line.data(), 1, line.size(), f);
  std::fflush(f);
}

}  // namespace gl::glctld
