namespace Microsoft.ML.SDfp.Numerics.Tests.Runtime;

/// <summary>Locates files of this repository and of the restored packages from a test's output folder.</summary>
internal static class RepositoryPaths
{
    public static string Root { get; } = FindRoot();

    public static string NuGetPackages =>
        Environment.GetEnvironmentVariable("NUGET_PACKAGES") is { Length: > 0 } p
            ? p
            : Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".nuget", "packages");

    /// <summary>The pristine libLibTorchSharp.so inside the NuGet package folder.</summary>
    public static string PackagedLibTorchSharp =>
        Path.Combine(NuGetPackages, "torchsharp", "0.107.0", "runtimes", "linux-x64", "native", "libLibTorchSharp.so");

    private static string FindRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "Microsoft.ML.SDfp.sln")))
                return dir.FullName;
        }
        throw new InvalidOperationException($"No Microsoft.ML.SDfp.sln above {AppContext.BaseDirectory}.");
    }
}
