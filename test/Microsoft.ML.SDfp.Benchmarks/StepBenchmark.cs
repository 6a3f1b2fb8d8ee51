using System.Diagnostics;
using System.Globalization;
using System.Reflection;
using System.Text.Json;

namespace Microsoft.ML.SDfp.Benchmarks;

/// <summary>
/// The whole ResNet-20 training step, quantised against FP32: several separate processes (a process's allocator state
/// and thread placement are part of what is measured), each running interleaved rounds of every arm, and per process
/// the min/median/max of the step time, the ratio of the medians, and a breakdown of the step into phases. The result
/// is the median of the per-process ratios.
/// </summary>
internal static class StepBenchmark
{
    public static int Run(string[] args)
    {
        StepOptions options;
        int? child;
        int? spin;
        try
        {
            options = StepOptions.Parse(args, out child, out spin);
        }
        catch (ArgumentException e)
        {
            Console.Error.WriteLine(e.Message);
            Console.Error.WriteLine(StepOptions.Usage);
            return 2;
        }
        if (options.Help)
        {
            Console.WriteLine(StepOptions.Usage);
            return 0;
        }
        if (spin is { } parent)
            return StepProcess.Spin(parent);
        if (child is { } index)
            return StepProcess.Run(options, index);
        return Orchestrate(options);
    }

    private static int Orchestrate(StepOptions options)
    {
        Console.WriteLine($"step: ResNet-20, batch {options.BatchSize}, 28x28 Fashion-MNIST, {options.Threads} threads; arms "
            + string.Join(", ", options.Arms().Select(a => a.Name)) + $"; {options.Processes} processes x {options.Rounds} rounds "
            + $"(+{options.Warmup} warm-up); allocator {(options.RetainMemory ? "retaining freed memory" : "glibc default")}; "
            + $"EndStep {(options.EndStep ? "on" : "off")}; {(options.Contend ? "with a competing CPU-bound process" : "no competing process")}; "
            + $"OMP_WAIT_POLICY={Environment.GetEnvironmentVariable("OMP_WAIT_POLICY") ?? "(unset: PASSIVE for the children)"}");
        Console.WriteLine($"load average before: {LoadAverage()}");
        var results = new List<StepProcessResult>();
        Process? competitor = null;
        try
        {
            if (options.Contend)
                competitor = Start(["step", "--spin", Environment.ProcessId.ToString(CultureInfo.InvariantCulture)], redirect: false);
            for (var p = 0; p < options.Processes; p++)
            {
                var result = RunChild(options, p);
                if (result is null)
                    return 1;
                results.Add(result);
                Report(options, result);
            }
        }
        finally
        {
            if (competitor is not null)
            {
                competitor.Kill();
                competitor.WaitForExit();
                competitor.Dispose();
            }
        }
        Console.WriteLine($"load average after: {LoadAverage()}");
        Summarise(options, results);
        return 0;
    }

    private static StepProcessResult? RunChild(StepOptions options, int index)
    {
        using var process = Start(["step", "--child", index.ToString(CultureInfo.InvariantCulture), .. options.ChildArguments()], redirect: true);
        StepProcessResult? result = null;
        string? line;
        while ((line = process.StandardOutput.ReadLine()) is not null)
        {
            if (line.StartsWith(StepProcess.Marker, StringComparison.Ordinal))
                result = JsonSerializer.Deserialize<StepProcessResult>(line[StepProcess.Marker.Length..]);
            else
                Console.WriteLine($"  [process {index}] {line}");
        }
        process.WaitForExit();
        if (process.ExitCode != 0 || result is null)
        {
            Console.Error.WriteLine($"measuring process {index} failed (exit code {process.ExitCode}).");
            return null;
        }
        return result;
    }

    /// <summary>Starts this benchmark again with <paramref name="arguments"/>, under dotnet when it runs as a dll.</summary>
    private static Process Start(IReadOnlyList<string> arguments, bool redirect)
    {
        var host = Environment.ProcessPath ?? throw new InvalidOperationException("Cannot find this process's executable.");
        var info = new ProcessStartInfo(host) { UseShellExecute = false, RedirectStandardOutput = redirect };
        if (Path.GetFileNameWithoutExtension(host) == "dotnet")
            info.ArgumentList.Add(Assembly.GetEntryAssembly()!.Location);
        foreach (var a in arguments)
            info.ArgumentList.Add(a);
        // libtorch's OpenMP workers spin while idle unless told otherwise, which on 2 cores starves the other arm.
        if (Environment.GetEnvironmentVariable("OMP_WAIT_POLICY") is null)
            info.Environment["OMP_WAIT_POLICY"] = "PASSIVE";
        return Process.Start(info) ?? throw new InvalidOperationException($"Could not start {host}.");
    }

    private static void Report(StepOptions options, StepProcessResult result)
    {
        var fp32 = Totals(result, "fp32");
        Console.WriteLine($"process {result.Process + 1} (RSS at end {result.ResidentMb:F0} MB):");
        foreach (var arm in options.Arms().Select(a => a.Name))
        {
            var t = Totals(result, arm);
            var ratios = PairedRatios(result, arm);
            Console.WriteLine($"  {arm,-16} step ms min/median/max {t.Min(),7:F1} {Median(t),7:F1} {t.Max(),7:F1}"
                + (arm == "fp32" ? "" : $"   ratio of medians {Median(t) / Median(fp32):F3}, per round {ratios.Min():F3}/{Median(ratios):F3}/{ratios.Max():F3}, "
                    + $"CPU time {Median(Cpu(result, arm)) / Median(Cpu(result, "fp32")):F3}"));
        }
    }

    private static void Summarise(StepOptions options, List<StepProcessResult> results)
    {
        Console.WriteLine();
        foreach (var arm in options.Arms().Select(a => a.Name).Skip(1))
        {
            var perProcess = results.Select(r => Median(Totals(r, arm)) / Median(Totals(r, "fp32"))).ToList();
            Console.WriteLine($"{arm}/fp32 per process: {string.Join(", ", perProcess.Select(r => r.ToString("F3", CultureInfo.InvariantCulture)))}; "
                + $"min/median/max {perProcess.Min():F3}/{Median(perProcess):F3}/{perProcess.Max():F3}; median of medians {Median(perProcess):F3}");
            // CPU time per step moves less than wall time when other processes take the cores, so it is shown beside it.
            var cpu = results.Select(r => Median(Cpu(r, arm)) / Median(Cpu(r, "fp32"))).ToList();
            Console.WriteLine($"{arm}/fp32 CPU time per process: {string.Join(", ", cpu.Select(r => r.ToString("F3", CultureInfo.InvariantCulture)))}; median {Median(cpu):F3}");
        }
        Console.WriteLine();
        Console.WriteLine("phase breakdown, median per step over all processes' rounds (ms unless stated):");
        Console.WriteLine($"  {"arm",-16} {"step",7} {"fwd",7} {"bwd",7} {"optim",7} {"end",6} {"W q",6} {"A q",6} {"G q",6} {"passes",6} {"misses",6} {"mgd KB",7} {"faults",7} {"CPU ms",7}");
        foreach (var arm in options.Arms().Select(a => a.Name))
        {
            var r = results.SelectMany(p => p.Records).Where(x => x.Arm == arm).ToList();
            double M(Func<StepRecord, double> f) => Median(r.Select(f).ToList());
            Console.WriteLine($"  {arm,-16} {M(x => x.Total),7:F1} {M(x => x.Forward),7:F1} {M(x => x.Backward),7:F1} {M(x => x.Optimizer),7:F1} "
                + $"{M(x => x.EndStep),6:F2} {M(x => x.Weight),6:F2} {M(x => x.Activation),6:F2} {M(x => x.Error),6:F2} {M(x => x.Passes),6:F0} "
                + $"{M(x => x.Misses),6:F0} {M(x => x.ManagedKb),7:F0} {M(x => x.MinorFaults),7:F0} {M(x => x.CpuMs),7:F0}");
        }
        Console.WriteLine($"  RSS at the end of each process: {string.Join(", ", results.Select(p => $"{p.ResidentMb:F0} MB"))}");
    }

    private static List<double> Totals(StepProcessResult result, string arm) =>
        result.Records.Where(r => r.Arm == arm).Select(r => r.Total).ToList();

    private static List<double> Cpu(StepProcessResult result, string arm) =>
        result.Records.Where(r => r.Arm == arm).Select(r => r.CpuMs).ToList();

    /// <summary>Per round, this arm's step over the FP32 step of the same round.</summary>
    private static List<double> PairedRatios(StepProcessResult result, string arm)
    {
        var fp32 = result.Records.Where(r => r.Arm == "fp32").ToDictionary(r => r.Round, r => r.Total);
        return result.Records.Where(r => r.Arm == arm).Select(r => r.Total / fp32[r.Round]).ToList();
    }

    private static double Median(IReadOnlyList<double> values)
    {
        var sorted = values.Order().ToList();
        var n = sorted.Count;
        return n == 0 ? double.NaN : n % 2 == 1 ? sorted[n / 2] : (sorted[n / 2 - 1] + sorted[n / 2]) / 2;
    }

    private static string LoadAverage()
    {
        try
        {
            return File.ReadAllText("/proc/loadavg").Trim();
        }
        catch (IOException)
        {
            return "unknown";
        }
    }
}
