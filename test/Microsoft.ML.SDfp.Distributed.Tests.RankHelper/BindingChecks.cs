using System.Globalization;
using Microsoft.ML.SDfp.Distributed.Exchange;
using Microsoft.ML.SDfp.Distributed.Mpi;

namespace Microsoft.ML.SDfp.Distributed.Tests.RankHelper;

internal static class BindingChecks
{
    public static int Run()
    {
        var world = MpiCommunicator.World;
        void Say(string text) => Console.WriteLine($"rank {world.Rank}: {text}");
        Say($"size {world.Size}");
        Say($"sum {world.AllReduce(world.Rank + 1, MpiOperation.Sum)}");
        Say($"max {world.AllReduce((float)world.Rank - 0.5f, MpiOperation.Max).ToString(CultureInfo.InvariantCulture)}");
        Say($"min {world.AllReduce((long)world.Rank + 10, MpiOperation.Min)}");
        Say($"gather {string.Join(",", world.AllGather<int>([world.Rank * 7]))}");
        Span<double> broadcast = [world.Rank == 0 ? 3.25 : -1];
        world.Broadcast(broadcast, root: 0);
        Say($"bcast {broadcast[0].ToString(CultureInfo.InvariantCulture)}");
        try
        {
            world.Broadcast<int>(new int[1], root: world.Size);
            Say("invalid root: no error");
        }
        catch (MpiException e)
        {
            Say($"invalid root: {e.Call} {e.ErrorCode} {e.Message}");
        }
        world.Barrier();
        Say("done");
        return 0;
    }

    /// <summary>Segment 0 differs by rank, segment 1 is zero everywhere, segment 2 holds a NaN on the last rank when asked.</summary>
    public static int Exchange(string formatName, int bits, bool withNaN)
    {
        var world = MpiCommunicator.World;
        var format = Enum.Parse<GradientExchangeFormat>(formatName);
        var values = new float[] { 0.5f * (world.Rank + 1), -0.013f * (world.Rank + 1), 0.0071f, 0, 0, 1e-3f, 2e-3f };
        if (withNaN && world.Rank == world.Size - 1)
            values[6] = float.NaN;
        var exchange = new GradientExchange(world, format, [3, 2, 2], bits);
        exchange.SumInPlace(values);
        Console.WriteLine($"rank {world.Rank}: sumbits {exchange.SumBits} bytes {exchange.BytesPerStep} fp32bytes {exchange.Fp32BytesPerStep}");
        Console.WriteLine($"rank {world.Rank}: values {string.Join(",", values.Select(v => BitConverter.SingleToInt32Bits(v).ToString("x8", CultureInfo.InvariantCulture)))}");
        return 0;
    }
}
