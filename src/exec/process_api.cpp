// The process API's one function of its own (process_api.hpp); the rest is interfaces.
#include <type_traits>

#include <tether/exec/process_api.hpp>

namespace tether::exec {

std::uint64_t seq_of(const ProcessEvent& event) {
  return std::visit(
      [](const auto& e) -> std::uint64_t {
        if constexpr (std::is_same_v<std::decay_t<decltype(e)>, FailedEvent>) {
          return 0;
        } else {
          return e.seq;
        }
      },
      event);
}

}  // namespace tether::exec
