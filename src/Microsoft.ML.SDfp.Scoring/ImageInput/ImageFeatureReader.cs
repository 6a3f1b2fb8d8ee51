using System.Runtime.InteropServices;
using Microsoft.ML.Data;
using Microsoft.ML.Transforms.Image;
using SkiaSharp;

namespace Microsoft.ML.SDfp.ImageInput;

/// <summary>
/// Reads the image column of one cursor's current row as RGB floats (channel-planar, 3×H×W at the model's input size).
/// Bytes and MLImages are decoded and resized by SkiaSharp and scaled to [0, 1]; float vectors are taken in their own
/// units and resized bilinearly. One instance per cursor: it reuses its buffers, so it is not thread-safe.
/// </summary>
internal sealed class ImageFeatureReader
{
    private const float InverseByteScale = 1f / 255f;

    private const string EmptyBytesReason = "the image bytes are empty (missing or unreadable file?).";

    private readonly string _columnName;
    private readonly ImageColumnKind _kind;
    private readonly ImageInputShape _vectorShape;
    private readonly int _width;
    private readonly int _height;
    private readonly ValueGetter<VBuffer<byte>>? _bytesGetter;
    private readonly ValueGetter<MLImage>? _imageGetter;
    private readonly ValueGetter<VBuffer<float>>? _floatGetter;
    private readonly ValueGetter<ReadOnlyMemory<char>>? _pathGetter;
    private VBuffer<byte> _bytes;
    private VBuffer<float> _floats;
    private MLImage? _image;
    private ReadOnlyMemory<char> _path;

    public ImageFeatureReader(DataViewRow row, string columnName, ImageColumnKind kind, ImageInputShape vectorShape,
        int width, int height, DataViewSchema.Column? pathColumn)
    {
        _columnName = columnName;
        _kind = kind;
        _vectorShape = vectorShape;
        _width = width;
        _height = height;
        DataViewSchema.Column column = row.Schema[columnName];
        switch (kind)
        {
            case ImageColumnKind.EncodedBytes:
                _bytesGetter = row.GetGetter<VBuffer<byte>>(column);
                break;
            case ImageColumnKind.MLImage:
                _imageGetter = row.GetGetter<MLImage>(column);
                break;
            default:
                _floatGetter = row.GetGetter<VBuffer<float>>(column);
                break;
        }

        if (pathColumn is { } path && row.IsColumnActive(path))
        {
            _pathGetter = row.GetGetter<ReadOnlyMemory<char>>(path);
        }
    }

    /// <summary>Floats per image that <see cref="Read"/> writes: 3 × height × width.</summary>
    public int RgbSize => 3 * _height * _width;

    /// <summary>
    /// Writes the current row's image as RGB (3×H×W) into <paramref name="rgb"/>. Returns true when the image is
    /// grey (all three channels equal, or a 1-channel vector) so the caller can pick the model's channel count.
    /// </summary>
    public bool Read(Span<float> rgb, long rowIndex)
    {
        return _kind switch
        {
            ImageColumnKind.EncodedBytes => ReadBytes(rgb, rowIndex),
            ImageColumnKind.MLImage => ReadImage(rgb, rowIndex),
            _ => ReadFloats(rgb, rowIndex),
        };
    }

    /// <summary>Converts RGB planes to the model's channel count: luma for 1 channel, a copy for 3.</summary>
    public static void ToModelChannels(ReadOnlySpan<float> rgb, Span<float> destination, int channels)
    {
        int plane = rgb.Length / 3;
        if (channels == 3)
        {
            rgb.CopyTo(destination);
            return;
        }

        for (int i = 0; i < plane; i++)
        {
            // ITU-R BT.601 luma, the weights ImageAnalytics' grey conversion uses as well.
            destination[i] = (0.299f * rgb[i]) + (0.587f * rgb[plane + i]) + (0.114f * rgb[(2 * plane) + i]);
        }
    }

    private string? CurrentPath()
    {
        if (_pathGetter is null)
        {
            return null;
        }

        _pathGetter(ref _path);
        return _path.ToString();
    }

    private bool ReadBytes(Span<float> rgb, long rowIndex)
    {
        _bytesGetter!(ref _bytes);
        if (_bytes.Length == 0)
        {
            throw new ImageDecodeException(_columnName, rowIndex, CurrentPath(), EmptyBytesReason);
        }

        using SKBitmap decoded = Decode(_bytes.IsDense ? _bytes.GetValues() : _bytes.DenseValues().ToArray(), out string? problem)
            ?? throw new ImageDecodeException(_columnName, rowIndex, CurrentPath(), problem!);
        return FromBitmap(decoded, rgb);
    }

    /// <summary>
    /// Decodes <paramref name="encoded"/> as <c>SKBitmap.Decode</c> does, except that a decode SkiaSharp reports as
    /// incomplete (a truncated file, whose missing part it fills in) is a failure too. Returns null with the reason.
    /// </summary>
    public static SKBitmap? Decode(ReadOnlySpan<byte> encoded, out string? problem)
    {
        using SKData data = SKData.CreateCopy(encoded);
        // SKCodec.Create returns null for data it cannot recognise (SKBitmap.Decode would throw ArgumentNullException).
        using SKCodec? codec = SKCodec.Create(data);
        if (codec is null)
        {
            problem = encoded.Length == 0
                ? EmptyBytesReason
                : $"the {encoded.Length} bytes are not an image format SkiaSharp can decode.";
            return null;
        }

        SKImageInfo info = codec.Info;
        if (info.AlphaType == SKAlphaType.Unpremul)
        {
            info.AlphaType = SKAlphaType.Premul;
        }

        var decoded = new SKBitmap(info);
        SKCodecResult result = codec.GetPixels(info, decoded.GetPixels());
        if (result == SKCodecResult.Success)
        {
            problem = null;
            return decoded;
        }

        decoded.Dispose();
        problem = result == SKCodecResult.IncompleteInput
            ? $"the {codec.EncodedFormat} image is truncated: SkiaSharp decoded only part of its {info.Width}×{info.Height} pixels (IncompleteInput)."
            : $"the {codec.EncodedFormat} image is damaged: SkiaSharp reports {result}.";
        return null;
    }

    private bool ReadImage(Span<float> rgb, long rowIndex)
    {
        _imageGetter!(ref _image!);
        if (_image is null || _image.Width <= 0 || _image.Height <= 0)
        {
            throw new ImageDecodeException(_columnName, rowIndex, CurrentPath(), "the MLImage is missing (LoadImages could not read the file?).");
        }

        SKColorType colorType = _image.PixelFormat switch
        {
            MLPixelFormat.Bgra32 => SKColorType.Bgra8888,
            MLPixelFormat.Rgba32 => SKColorType.Rgba8888,
            _ => throw new ImageDecodeException(_columnName, rowIndex, CurrentPath(), $"unsupported MLImage pixel format {_image.PixelFormat}."),
        };
        using var bitmap = new SKBitmap(new SKImageInfo(_image.Width, _image.Height, colorType, SKAlphaType.Unpremul));
        ReadOnlySpan<byte> pixels = _image.Pixels;
        int rowBytes = _image.Width * 4;
        IntPtr destination = bitmap.GetPixels();
        for (int y = 0; y < _image.Height; y++)
        {
            // Copy row by row: Skia may pad its rows (RowBytes), MLImage pixels are tightly packed.
            Marshal.Copy(pixels.Slice(y * rowBytes, rowBytes).ToArray(), 0, destination + (y * bitmap.RowBytes), rowBytes);
        }

        return FromBitmap(bitmap, rgb);
    }

    private bool FromBitmap(SKBitmap source, Span<float> rgb)
    {
        SKBitmap? converted = null;
        SKBitmap? resized = null;
        try
        {
            SKBitmap current = source;
            if (current.ColorType != SKColorType.Rgba8888 || current.AlphaType == SKAlphaType.Premul)
            {
                converted = new SKBitmap(new SKImageInfo(current.Width, current.Height, SKColorType.Rgba8888, SKAlphaType.Unpremul));
                if (!current.CopyTo(converted, SKColorType.Rgba8888))
                {
                    using var canvas = new SKCanvas(converted);
                    canvas.Clear(SKColors.Black);
                    canvas.DrawBitmap(current, 0, 0);
                }

                current = converted;
            }

            if (current.Width != _width || current.Height != _height)
            {
                resized = current.Resize(new SKImageInfo(_width, _height, SKColorType.Rgba8888, SKAlphaType.Unpremul), SKFilterQuality.Medium)
                    ?? throw new InvalidOperationException($"SkiaSharp could not resize a {current.Width}×{current.Height} image to {_width}×{_height}.");
                current = resized;
            }

            ReadOnlySpan<byte> pixels = current.GetPixelSpan();
            int plane = _width * _height;
            int stride = current.RowBytes;
            bool grey = true;
            for (int y = 0; y < _height; y++)
            {
                for (int x = 0; x < _width; x++)
                {
                    int p = (y * stride) + (x * 4);
                    byte r = pixels[p], g = pixels[p + 1], b = pixels[p + 2];
                    grey &= r == g && g == b;
                    int i = (y * _width) + x;
                    // A multiply by the float 1/255, as ML.NET's ExtractPixels(scaleImage: 1 / 255f) does, so that the
                    // LoadImages → ExtractPixels → ApplyOnnxModel recipe feeds an exported model the same bits.
                    rgb[i] = r * InverseByteScale;
                    rgb[plane + i] = g * InverseByteScale;
                    rgb[(2 * plane) + i] = b * InverseByteScale;
                }
            }

            return grey;
        }
        finally
        {
            converted?.Dispose();
            resized?.Dispose();
        }
    }

    private bool ReadFloats(Span<float> rgb, long rowIndex)
    {
        _floatGetter!(ref _floats);
        if (_floats.Length != _vectorShape.Size)
        {
            throw new ImageDecodeException(_columnName, rowIndex, CurrentPath(), $"the float vector has {_floats.Length} values, expected {_vectorShape} = {_vectorShape.Size}.");
        }

        float[] dense = _floats.DenseValues().ToArray();
        int plane = _width * _height;
        for (int c = 0; c < 3; c++)
        {
            int sourceChannel = _vectorShape.Channels == 1 ? 0 : c;
            BilinearResizer.Resize(dense.AsSpan(sourceChannel * _vectorShape.Height * _vectorShape.Width, _vectorShape.Height * _vectorShape.Width),
                _vectorShape.Height, _vectorShape.Width, rgb.Slice(c * plane, plane), _height, _width);
        }

        return _vectorShape.Channels == 1;
    }
}
