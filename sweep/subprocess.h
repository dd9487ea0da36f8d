// Running a child process (an lpusim subcommand) with its output captured to a file; used by the
// sweep runner and by `lpusim regress`. POSIX only (posix_spawn / waitpid).
#pragma once
#include <string>
#include <sys/types.h>
#include <vector>

namespace lpu::sweep {

// Starts argv[0] with `argv`, stdin from /dev/null, stdout and stderr into `log_path` (truncated).
// Throws InputError when the program cannot be started.
pid_t spawn_logged(const std::vector<std::string>& argv, const std::string& log_path);

// How a child ended: exit code, or the signal that killed it.
struct ExitStatus {
  int exit_code = -1;  // -1 if killed by a signal
  int signal = 0;
  bool ok() const { return exit_code == 0; }
  std::string text() const;  // "exit code 1" / "killed by signal 9"
};
ExitStatus decode_wait_status(int status);

// Runs to completion and returns its status (blocking).
ExitStatus run_logged(const std::vector<std::string>& argv, const std::string& log_path);

// The last `max_lines` non-empty lines of a text file joined by " | ", at most `max_chars` bytes.
std::string tail_text(const std::string& path, size_t max_lines = 3, size_t max_chars = 400);

// Path of the running executable (/proc/self/exe).
std::string self_exe();

}  // namespace lpu::sweep
