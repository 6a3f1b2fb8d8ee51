namespace Microsoft.ML.SDfp.Distributed.Tests;

/// <summary>Where the build put the rank helper (set in the .csproj, so it follows the configuration).</summary>
[AttributeUsage(AttributeTargets.Assembly)]
public sealed class RankHelperPathAttribute(string path) : Attribute
{
    public string Path { get; } = path;
}
