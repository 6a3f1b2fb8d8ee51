using Microsoft.ML.SDfp.ImageInput;
using Microsoft.ML.SDfp.Scoring;

namespace Microsoft.ML.SDfp.Trainers;

/// <summary>The per-channel mean and standard deviation the network normalises its input with, and that normalisation.</summary>
internal static class ChannelStatistics
{
    /// <summary>Mean and standard deviation of each channel over all pixels of all images.</summary>
    public static (float[] Mean, float[] Std) Compute(float[] pixels, ImageInputShape shape)
    {
        int plane = shape.Height * shape.Width;
        int count = pixels.Length / shape.Size;
        var mean = new float[shape.Channels];
        var std = new float[shape.Channels];
        for (int c = 0; c < shape.Channels; c++)
        {
            double sum = 0, sumSquares = 0;
            for (int i = 0; i < count; i++)
            {
                ReadOnlySpan<float> channel = pixels.AsSpan((i * shape.Size) + (c * plane), plane);
                foreach (float v in channel)
                {
                    sum += v;
                    sumSquares += (double)v * v;
                }
            }

            double n = (double)count * plane;
            double m = sum / n;
            double variance = Math.Max(0, (sumSquares / n) - (m * m));
            mean[c] = (float)m;
            // A constant channel (e.g. blank images) would divide by zero; unit scale keeps it finite.
            std[c] = variance > 1e-12 ? (float)Math.Sqrt(variance) : 1f;
        }

        return (mean, std);
    }

    /// <summary>Normalises the first <paramref name="count"/> images in place, as the network will at scoring.</summary>
    public static void NormalizeAll(SDfpNetwork network, float[] pixels, int count)
    {
        int size = network.InputShape.Size;
        for (int i = 0; i < count; i++)
        {
            network.Normalize(pixels.AsSpan(i * size, size));
        }
    }
}
