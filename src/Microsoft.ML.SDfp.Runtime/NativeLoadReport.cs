namespace Microsoft.ML.SDfp.Runtime;

/// <summary>What <see cref="TorchSharpRuntime.EnsureLoaded"/> found and did.</summary>
public enum NativeLoadAction
{
    /// <summary>Nothing was needed: the system libstdc++ satisfies TorchSharp, or this is not Linux.</summary>
    NotNeeded,

    /// <summary>The native library was not found next to TorchSharp; TorchSharp's own loader reports that.</summary>
    NotFound,

    /// <summary>Patching was turned off with <c>SDFP_NATIVE_PATCH=0</c>.</summary>
    Disabled,

    /// <summary>A patched copy was written to the cache and loaded.</summary>
    PatchedCopyWritten,

    /// <summary>A patched copy already in the cache was verified and loaded.</summary>
    PatchedCopyReused,
}

/// <summary>The outcome of preparing TorchSharp's native library for this process.</summary>
/// <param name="Action">What was done.</param>
/// <param name="OriginalPath">The <c>libLibTorchSharp.so</c> that TorchSharp would load, if found.</param>
/// <param name="LoadedPath">The file actually loaded: the original, or the patched copy.</param>
/// <param name="WeakenedVersions">The version requirements made non-fatal in the copy.</param>
/// <param name="LibStdCxxPath">The libstdc++ this process uses, if it was inspected.</param>
public sealed record NativeLoadReport(
    NativeLoadAction Action,
    string? OriginalPath,
    string? LoadedPath,
    IReadOnlyList<string> WeakenedVersions,
    string? LibStdCxxPath)
{
    /// <inheritdoc />
    public override string ToString() =>
        $"{Action}: original={OriginalPath ?? "-"}, loaded={LoadedPath ?? "-"}, weakened=[{string.Join(",", WeakenedVersions)}], libstdc++={LibStdCxxPath ?? "-"}";
}
