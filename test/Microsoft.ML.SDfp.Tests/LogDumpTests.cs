namespace Microsoft.ML.SDfp.Tests;

[Collection(TrainedModelCollection.Name)]
public sealed class LogDumpTests(TrainedModelFixture fixture, Xunit.Abstractions.ITestOutputHelper output)
{
    [Fact]
    public void Dump()
    {
        output.WriteLine($"training time {fixture.TrainingTime}");
        foreach (var m in fixture.Log) output.WriteLine(m);
        foreach (var e in fixture.Epochs) output.WriteLine(e.ToString());
    }
}
