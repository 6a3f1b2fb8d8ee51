namespace Microsoft.ML.SDfp.MLNet;
internal static class Probe
{
    internal static Microsoft.ML.VersionInfo V() => new Microsoft.ML.VersionInfo("ABCDEFGH", 0x00010001, 0x00010001, 0x00010001, "x", "y");
}
