using System.Diagnostics;
using Microsoft.ML.SDfp.Runtime;
using Xunit;

namespace Microsoft.ML.SDfp.Numerics.Tests.Runtime;

/// <summary>
/// An app that takes the numerics as a NuGet package reference, with no manual step, gets a
/// working TorchSharp on this machine; the loader is what makes it work, and its errors say how
/// to fix them.
/// </summary>
public class PackageConsumerTests : IClassFixture<PackageConsumerTests.ConsumerApp>
{
    private readonly ConsumerApp _app;

    public PackageConsumerTests(ConsumerApp app) => _app = app;

    [Fact]
    public void A_package_consumer_runs_torch_and_the_second_run_reuses_the_cached_copy()
    {
        var cache = Directory.CreateTempSubdirectory("sdfp-cache-").FullName;
        var first = _app.Run(("SDFP_NATIVE_CACHE", cache));
        Assert.True(first.ExitCode == 0, first.Output);
        Assert.Contains("sum: 4", first.Output);

        var second = _app.Run(("SDFP_NATIVE_CACHE", cache));
        Assert.True(second.ExitCode == 0, second.Output);
        if (ConsumerApp.SystemLacksGlibcxx3432)
        {
            Assert.Contains("PatchedCopyWritten", first.Output);
            Assert.Contains("PatchedCopyReused", second.Output);
        }
    }

    [OnOldLibStdCxxFact]
    public void Without_the_loader_TorchSharp_does_not_load_on_a_GCC12_system()
    {
        var run = _app.Run(("SDFP_NATIVE_PATCH", "0"));
        Assert.NotEqual(0, run.ExitCode);
        Assert.DoesNotContain("sum: 4", run.Output);
    }

    [OnOldLibStdCxxFact]
    public void An_unwritable_cache_fails_naming_the_folder_and_the_setting_to_change()
    {
        var run = _app.Run(("SDFP_NATIVE_CACHE", "/proc/sdfp-cannot-write-here"));
        Assert.NotEqual(0, run.ExitCode);
        Assert.Contains("NativeLoadException", run.Output);
        Assert.Contains("/proc/sdfp-cannot-write-here", run.Output);
        Assert.Contains("Set SDFP_NATIVE_CACHE", run.Output);
    }

    /// <summary>Packs the runtime and numerics projects into a private feed and builds a console app against it, once.</summary>
    public sealed class ConsumerApp : IDisposable
    {
        private readonly string _work = Directory.CreateTempSubdirectory("sdfp-consumer-").FullName;
        private readonly string _dll;

        public static bool SystemLacksGlibcxx3432 => OnOldLibStdCxxFactAttribute.SystemLacksGlibcxx3432;

        public ConsumerApp()
        {
            var configuration = AppContext.BaseDirectory.Contains("/Release/") ? "Release" : "Debug";
            // A unique version, so the global package cache never serves a stale copy of an earlier run.
            var version = $"0.1.0-test.{DateTime.UtcNow:yyyyMMddHHmmss}.{Environment.ProcessId}";
            var feed = Path.Combine(_work, "feed");
            // The numerics package depends on the runtime package (the loader), so the feed needs both.
            foreach (var name in new[] { "Microsoft.ML.SDfp.Runtime", "Microsoft.ML.SDfp.Numerics" })
            {
                var project = Path.Combine(RepositoryPaths.Root, "src", name, name + ".csproj");
                Dotnet(RepositoryPaths.Root, "pack", project, "--no-build", "-c", configuration, "-o", feed, $"-p:PackageVersion={version}");
            }

            var app = Path.Combine(_work, "app");
            Directory.CreateDirectory(app);
            File.WriteAllText(Path.Combine(app, "NuGet.config"), $"""
                <?xml version="1.0" encoding="utf-8"?>
                <configuration>
                  <packageSources>
                    <clear />
                    <add key="local" value="{feed}" />
                    <add key="nuget.org" value="https://api.nuget.org/v3/index.json" protocolVersion="3" />
                  </packageSources>
                </configuration>
                """);
            File.WriteAllText(Path.Combine(app, "Consumer.csproj"), $"""
                <Project Sdk="Microsoft.NET.Sdk">
                  <PropertyGroup>
                    <OutputType>Exe</OutputType>
                    <TargetFramework>net10.0</TargetFramework>
                    <ImplicitUsings>enable</ImplicitUsings>
                  </PropertyGroup>
                  <ItemGroup>
                    <PackageReference Include="Microsoft.ML.SDfp.Numerics" Version="{version}" />
                  </ItemGroup>
                </Project>
                """);
            File.WriteAllText(Path.Combine(app, "Program.cs"), """
                using Microsoft.ML.SDfp.Runtime;
                using TorchSharp;
                Console.WriteLine("report: " + TorchSharpRuntime.EnsureLoaded());
                using var ones = torch.ones(4);
                Console.WriteLine("sum: " + ones.sum().item<float>());
                """);
            Dotnet(app, "build", "-c", "Release", "-o", Path.Combine(app, "out"));
            _dll = Path.Combine(app, "out", "Consumer.dll");
        }

        public (int ExitCode, string Output) Run(params (string Name, string Value)[] environment)
        {
            var start = new ProcessStartInfo("dotnet", new[] { _dll }) { RedirectStandardOutput = true, RedirectStandardError = true };
            foreach (var (name, value) in environment)
                start.Environment[name] = value;
            using var process = Process.Start(start)!;
            var stdout = process.StandardOutput.ReadToEndAsync();
            var stderr = process.StandardError.ReadToEndAsync();
            if (!process.WaitForExit(TimeSpan.FromMinutes(2)))
            {
                process.Kill(entireProcessTree: true);
                throw new TimeoutException("the consumer app did not finish in 2 minutes");
            }
            return (process.ExitCode, stdout.Result + stderr.Result);
        }

        private static void Dotnet(string workingDirectory, params string[] args)
        {
            var start = new ProcessStartInfo("dotnet", args) { WorkingDirectory = workingDirectory, RedirectStandardOutput = true, RedirectStandardError = true };
            using var process = Process.Start(start)!;
            var stdout = process.StandardOutput.ReadToEndAsync();
            var stderr = process.StandardError.ReadToEndAsync();
            process.WaitForExit();
            if (process.ExitCode != 0)
                throw new InvalidOperationException($"dotnet {string.Join(' ', args)} failed ({process.ExitCode}):\n{stdout.Result}\n{stderr.Result}");
        }

        public void Dispose()
        {
            try { Directory.Delete(_work, recursive: true); } catch (IOException) { }
        }
    }
}
