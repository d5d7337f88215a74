// ServerDiagnostics: the stderr tail and end reason a launcher records for the client.
#include <tether/mcp/connection.hpp>

namespace tether::mcp {

void ServerDiagnostics::add_stderr_line(std::string line) {
  if (tail_lines_ == 0) return;
  if (tail_.size() == tail_lines_) tail_.pop_front();
  tail_.push_back(std::move(line));
}

std::string ServerDiagnostics::stderr_tail() const {
  std::string joined;
  for (const auto& line : tail_) {
    if (!joined.empty()) joined += '\n';
    joined += line;
  }
  return joined;
}

void ServerDiagnostics::set_end_reason(std::string reason) {
  if (!end_reason_) end_reason_ = std::move(reason);
}

}  // namespace tether::mcp
