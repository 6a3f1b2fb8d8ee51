using Microsoft.ML.Runtime;
using Microsoft.ML.SDfp.ImageInput;

namespace Microsoft.ML.SDfp.Trainers;

/// <summary>Decoded RGB images (3×H×W each) and 0-based labels, grown as rows are read.</summary>
internal sealed class DecodedImages
{
    private readonly int _rgbSize;
    private float[] _pixels = new float[1024];
    private long[] _labels = new long[16];

    public DecodedImages(int rgbSize) => _rgbSize = rgbSize;

    public int Count { get; private set; }

    public bool AllGrey { get; private set; } = true;

    public int SkippedMissingLabels { get; set; }

    /// <summary>Files (or rows) skipped because of Options.SkipUndecodableImages.</summary>
    public List<string> Undecodable { get; } = new();

    public long[] Labels => _labels;

    public void Add(ReadOnlySpan<float> rgb, long label, bool grey)
    {
        if ((long)(Count + 1) * _rgbSize > _pixels.Length)
        {
            Array.Resize(ref _pixels, (int)Math.Min(Array.MaxLength, Math.Max((long)(Count + 1) * _rgbSize, 2L * _pixels.Length)));
        }

        if (Count >= _labels.Length)
        {
            Array.Resize(ref _labels, 2 * _labels.Length);
        }

        rgb.CopyTo(_pixels.AsSpan(Count * _rgbSize, _rgbSize));
        _labels[Count] = label;
        AllGrey &= grey;
        Count++;
    }

    /// <summary>The images at the model's channel count (luma for 1, RGB for 3), contiguous.</summary>
    public float[] ToChannels(int channels)
    {
        int plane = _rgbSize / 3;
        int size = channels * plane;
        var output = new float[(long)Count * size];
        for (int i = 0; i < Count; i++)
        {
            ImageFeatureReader.ToModelChannels(_pixels.AsSpan(i * _rgbSize, _rgbSize), output.AsSpan(i * size, size), channels);
        }

        return output;
    }

    /// <summary>Warns, naming the first few, when images were skipped as undecodable.</summary>
    public void ReportUndecodable(IChannel ch, string what)
    {
        if (Undecodable.Count > 0)
        {
            ch.Warning($"Skipped {Undecodable.Count} images of the {what} that could not be decoded (Options.SkipUndecodableImages); " +
                $"first: {string.Join(", ", Undecodable.Take(5).Select(p => $"'{p}'"))}.");
        }
    }
}
