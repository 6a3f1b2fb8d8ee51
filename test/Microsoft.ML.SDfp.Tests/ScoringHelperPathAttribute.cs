namespace Microsoft.ML.SDfp.Tests;

/// <summary>Where the build put the scoring helper (set in the .csproj, so it follows the configuration).</summary>
[AttributeUsage(AttributeTargets.Assembly)]
public sealed class ScoringHelperPathAttribute(string path) : Attribute
{
    public string Path { get; } = path;
}
