// Running a program (the built lpusim) from a test without a shell: exit status, signal, timeout
// and captured output, so tests can tell a clean refusal from a crash or a hang.
#pragma once
#include <catch2/catch.hpp>

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

extern char** environ;

// Outcome of one run.
struct ProcessResult {
  bool timed_out = false;
  bool signaled = false;
  int signal = 0;
  int status = -1;     // exit status when it exited
  std::string output;  // what went to out_file
};

enum class Stderr { ToOutput, Discard };

// Runs `exe args...` (no shell) with stdin from /dev/null and stdout to `out_file`; stderr goes to
// the same file or is discarded. Kills it after `limit` (reported as timed_out, not a hang).
inline ProcessResult run_process(const std::string& exe, const std::vector<std::string>& args, const std::string& out_file,
                                 std::chrono::seconds limit, Stderr err) {
  std::vector<std::string> argv_s{exe};
  argv_s.insert(argv_s.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (auto& a : argv_s) argv.push_back(a.data());
  argv.push_back(nullptr);

  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 1, out_file.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (err == Stderr::ToOutput) posix_spawn_file_actions_adddup2(&fa, 1, 2);
  else posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
  posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  pid_t pid = 0;
  int rc = posix_spawn(&pid, exe.c_str(), &fa, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  REQUIRE(rc == 0);

  ProcessResult r;
  int wstatus = 0;
  const auto deadline = std::chrono::steady_clock::now() + limit;
  for (;;) {
    // No assertion per poll: the number of polls depends on the host's speed, and a test's
    // assertion count must not (CI compares runs).
    const pid_t w = waitpid(pid, &wstatus, WNOHANG);
    if (w < 0) FAIL("waitpid failed for " << exe);
    if (w == pid) break;
    if (std::chrono::steady_clock::now() > deadline) {
      kill(pid, SIGKILL);
      waitpid(pid, &wstatus, 0);
      r.timed_out = true;
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  if (WIFSIGNALED(wstatus)) {
    r.signaled = true;
    r.signal = WTERMSIG(wstatus);
  } else if (WIFEXITED(wstatus)) {
    r.status = WEXITSTATUS(wstatus);
  }
  std::ifstream in(out_file, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  r.output = ss.str();
  return r;
}
