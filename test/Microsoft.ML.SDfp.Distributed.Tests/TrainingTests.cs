namespace Microsoft.ML.SDfp.Distributed.Tests;

/// <summary>Four tiny trainings under mpirun -np 2 (FP32 and S-DFP8 exchange, each twice), run once for the class.</summary>
public sealed class TrainingRuns
{
    public TrainingRuns()
    {
        var runs = new[] { "Fp32", "Fp32", "SDfp", "SDfp" }
            .Select(exchange => Task.Run(() => Mpirun.Run(2, "train", $"exchange={exchange}", "epochs=2")))
            .ToArray();
        Task.WaitAll(runs);
        Fp32 = [runs[0].Result, runs[1].Result];
        SDfp = [runs[2].Result, runs[3].Result];
    }

    public Mpirun.Result[] Fp32 { get; }

    public Mpirun.Result[] SDfp { get; }
}

public sealed class TrainingTests(TrainingRuns runs) : IClassFixture<TrainingRuns>
{
    public static TheoryData<string> Formats => new() { "Fp32", "SDfp" };

    private Mpirun.Result[] Runs(string format) => format == "Fp32" ? runs.Fp32 : runs.SDfp;

    [Theory]
    [MemberData(nameof(Formats))]
    public void Both_ranks_end_with_bit_identical_weights_although_they_started_from_different_ones(string format)
    {
        // The helper seeds each rank's initialisation differently, so equality also shows rank 0's weights were broadcast.
        var run = Runs(format)[0];
        run.AssertSucceeded();
        Assert.Equal(run.Line(0, "hash"), run.Line(1, "hash"));
    }

    [Theory]
    [MemberData(nameof(Formats))]
    public void Training_is_reproducible_for_a_seed_and_world_size(string format)
    {
        var (first, second) = (Runs(format)[0], Runs(format)[1]);
        first.AssertSucceeded();
        second.AssertSucceeded();
        Assert.Equal(first.Line(0, "hash"), second.Line(0, "hash"));
        Assert.Equal(first.Line(0, "epoch 2 loss"), second.Line(0, "epoch 2 loss"));
    }

    [Fact]
    public void SDfp8_exchange_sends_int16_sums_and_one_exponent_per_tensor_against_fp32s_four_bytes()
    {
        long Bytes(Mpirun.Result run, int field) => long.Parse(run.Line(0, "bytes").Split(' ')[field]);
        var fp32 = Bytes(runs.Fp32[0], 0);
        Assert.Equal(fp32, Bytes(runs.Fp32[0], 2));
        Assert.Equal(fp32, Bytes(runs.SDfp[0], 2));
        var sdfp = Bytes(runs.SDfp[0], 0);
        // 2 bytes per value (8 bits + 1 for two ranks, in int16) + 4 per tensor; ResNet-20 has 65 parameter tensors.
        Assert.Equal(fp32 / 2 + 4 * 65, sdfp);
    }

    [Fact]
    public void The_two_exchanges_train_to_different_but_close_weights()
    {
        // S-DFP exchange rounds gradients, so it must not be silently FP32; the losses stay close on this tiny task.
        Assert.NotEqual(runs.Fp32[0].Line(0, "hash"), runs.SDfp[0].Line(0, "hash"));
        var fp32 = double.Parse(runs.Fp32[0].Line(0, "epoch 2 loss"), System.Globalization.CultureInfo.InvariantCulture);
        var sdfp = double.Parse(runs.SDfp[0].Line(0, "epoch 2 loss"), System.Globalization.CultureInfo.InvariantCulture);
        Assert.InRange(sdfp, fp32 - 0.3, fp32 + 0.3);
    }
}
