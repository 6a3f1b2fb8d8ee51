using Microsoft.ML.SDfp.Runtime;
using TorchSharp;
using Xunit;

namespace Microsoft.ML.SDfp.Numerics.Tests.Runtime;

/// <summary>The loader in this test process: acts only where needed, never edits the NuGet cache.</summary>
public class TorchSharpRuntimeTests
{
    private static bool SystemLacksGlibcxx3432 => OnOldLibStdCxxFactAttribute.SystemLacksGlibcxx3432;

    [Fact]
    public void Torch_runs_after_EnsureLoaded()
    {
        TorchSharpRuntime.EnsureLoaded();
        using var x = torch.arange(10, dtype: torch.float32);
        Assert.Equal(45f, x.sum().item<float>());
    }

    [Fact]
    public void It_patches_only_when_the_system_libstdcxx_lacks_a_version()
    {
        var report = TorchSharpRuntime.EnsureLoaded();
        if (SystemLacksGlibcxx3432)
        {
            Assert.Contains(report.Action, new[] { NativeLoadAction.PatchedCopyWritten, NativeLoadAction.PatchedCopyReused });
            Assert.Equal(new[] { "GLIBCXX_3.4.32" }, report.WeakenedVersions);
            Assert.NotEqual(report.OriginalPath, report.LoadedPath);
        }
        else
        {
            Assert.Equal(NativeLoadAction.NotNeeded, report.Action);
            Assert.Empty(report.WeakenedVersions);
        }
    }

    [Fact]
    public void The_patched_copy_lives_outside_the_NuGet_cache_and_the_package_stays_pristine()
    {
        var report = TorchSharpRuntime.EnsureLoaded();
        Assert.False(report.LoadedPath!.StartsWith(RepositoryPaths.NuGetPackages, StringComparison.Ordinal),
            $"loaded {report.LoadedPath} from the NuGet cache");
        var packaged = ElfImage.Load(RepositoryPaths.PackagedLibTorchSharp);
        Assert.False(packaged.Needs.Single(n => n.Name == "GLIBCXX_3.4.32").IsWeak);
    }

    [Fact]
    public void EnsureLoaded_is_idempotent_and_thread_safe()
    {
        var reports = new NativeLoadReport[8];
        Parallel.For(0, reports.Length, i => reports[i] = TorchSharpRuntime.EnsureLoaded());
        Assert.All(reports, r => Assert.Same(reports[0], r));
    }
}
