using System.Diagnostics;
using System.Reflection;
using System.Text;

namespace Microsoft.ML.SDfp.Distributed.Tests;

/// <summary>Starts the rank helper under Open MPI's mpirun and collects what each rank printed.</summary>
public static class Mpirun
{
    public static string HelperPath
    {
        get
        {
            var path = typeof(Mpirun).Assembly.GetCustomAttribute<RankHelperPathAttribute>()!.Path;
            Assert.True(File.Exists(path), $"rank helper not built at {path}");
            return path;
        }
    }

    /// <summary>
    /// The mpirun command for <paramref name="ranks"/> helper processes. <c>--oversubscribe</c>: CI has 2 cores, maybe fewer
    /// slots; <c>--allow-run-as-root</c>: CI runs as root. One torch thread per rank keeps 2 ranks on 2 cores.
    /// </summary>
    public static ProcessStartInfo StartInfo(int ranks, IEnumerable<string> arguments)
    {
        var start = new ProcessStartInfo("mpirun") { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in new[] { "--oversubscribe", "--allow-run-as-root", "--bind-to", "none", "-np", ranks.ToString(), "-x", "OMP_WAIT_POLICY=PASSIVE", "-x", "OMP_NUM_THREADS=1", "dotnet", HelperPath })
            start.ArgumentList.Add(a);
        foreach (var a in arguments)
            start.ArgumentList.Add(a);
        return start;
    }

    public static Result Run(int ranks, params string[] arguments) => Run(ranks, TimeSpan.FromMinutes(2), arguments);

    public static Result Run(int ranks, TimeSpan timeout, params string[] arguments)
    {
        using var process = new Process { StartInfo = StartInfo(ranks, arguments) };
        var stdout = new StringBuilder();
        var stderr = new StringBuilder();
        process.OutputDataReceived += (_, e) => { if (e.Data is not null) lock (stdout) stdout.AppendLine(e.Data); };
        process.ErrorDataReceived += (_, e) => { if (e.Data is not null) lock (stderr) stderr.AppendLine(e.Data); };
        process.Start();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        if (!process.WaitForExit(timeout))
        {
            process.Kill(entireProcessTree: true);
            process.WaitForExit();
            Assert.Fail($"mpirun did not finish within {timeout.TotalSeconds} s.\nstdout:\n{stdout}\nstderr:\n{stderr}");
        }
        process.WaitForExit();
        return new Result(process.ExitCode, stdout.ToString(), stderr.ToString());
    }

    public sealed record Result(int ExitCode, string Stdout, string Stderr)
    {
        /// <summary>The text after "rank R: KEY " on rank R's first line with that key.</summary>
        public string Line(int rank, string key)
        {
            var prefix = $"rank {rank}: {key} ";
            var line = Stdout.Split('\n').Select(l => l.TrimEnd('\r')).Select(l => l.Contains(prefix.TrimEnd(), StringComparison.Ordinal) ? l[l.IndexOf(prefix.TrimEnd(), StringComparison.Ordinal)..] : null).FirstOrDefault(l => l is not null && (l.StartsWith(prefix, StringComparison.Ordinal) || l == prefix.TrimEnd()));
            Assert.True(line is not null, $"rank {rank} printed no '{key}' line.\n{this}");
            return line!.Length > prefix.Length ? line[prefix.Length..] : "";
        }

        public void AssertSucceeded() => Assert.True(ExitCode == 0, $"mpirun exited with {ExitCode}.\n{this}");

        public override string ToString() => $"stdout:\n{Stdout}\nstderr:\n{Stderr}";
    }
}
