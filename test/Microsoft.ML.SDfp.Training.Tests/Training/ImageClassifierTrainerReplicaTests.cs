using Microsoft.ML.SDfp.Numerics.Formats;
using Microsoft.ML.SDfp.Runtime;
using Microsoft.ML.SDfp.Training.Data;
using Microsoft.ML.SDfp.Training.Models;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;
using RoundingMode = Microsoft.ML.SDfp.Numerics.Formats.RoundingMode;

namespace Microsoft.ML.SDfp.Training.Tests.Training;

[Collection(GlobalGeneratorCollection.Name)]
public sealed class ImageClassifierTrainerReplicaTests
{
    public ImageClassifierTrainerReplicaTests() => Microsoft.ML.SDfp.Runtime.TorchSharpRuntime.EnsureLoaded();

    [Fact]
    public void A_step_with_two_replicas_is_one_sgd_step_on_the_summed_gradients_of_the_two_halves_of_the_batch()
    {
        const int n = 16;
        const double lr = 0.1;
        var options = new TrainingOptions
        {
            Epochs = 1, BatchSize = n, LearningRate = lr, Momentum = 0, WeightDecay = 0,
            RandomCrop = false, HorizontalFlip = false, Seed = 9, Replicas = 2,
        };
        using var data = TrainingFixtures.RandomData(n, seed: 3);
        using var trained = TrainingFixtures.ResNet20(TrainingFixtures.SDfp8Body(), initSeed: 7);
        using var left = TrainingFixtures.ResNet20(TrainingFixtures.SDfp8Body(), initSeed: 7);
        using var right = TrainingFixtures.ResNet20(TrainingFixtures.SDfp8Body(), initSeed: 7);
        var threads = torch.get_num_threads();

        new ImageClassifierTrainer(trained, options).Fit(data);

        // The reference: the trainer's shuffle, each half through its own copy, gradients weighted by the half's share.
        using var generator = new Generator(9UL);
        using var order = randperm(n, generator: generator);
        foreach (var (model, half) in new[] { (left, 0), (right, 1) })
        {
            model.train();
            using var scope = NewDisposeScope();
            var indices = order.narrow(0, half * n / 2, n / 2);
            var loss = nn.functional.cross_entropy(model.call(data.Images.index_select(0, indices)), data.Labels.index_select(0, indices));
            (loss * 0.5).backward();
        }
        var expected = new Dictionary<string, float[]>();
        using (no_grad())
        {
            var rightParameters = right.named_parameters().ToDictionary(p => p.name, p => p.parameter);
            foreach (var (name, parameter) in left.named_parameters())
                expected[name] = (parameter - lr * (parameter.grad! + rightParameters[name].grad!)).data<float>().ToArray();
            var rightBuffers = right.named_buffers().ToDictionary(b => b.name, b => b.buffer);
            foreach (var (name, buffer) in left.named_buffers().Where(b => b.buffer.is_floating_point()))
                expected[name] = ((buffer + rightBuffers[name]) / 2).data<float>().ToArray();
        }

        var actual = TrainingFixtures.Weights(trained);
        foreach (var (name, values) in expected)
        {
            var got = actual[name];
            var worst = values.Zip(got, (e, a) => Math.Abs(e - a) / Math.Max(1e-3, Math.Abs(e))).Max();
            Assert.True(worst < 1e-4, $"{name}: relative difference {worst:G3} from the reference step");
        }
        Assert.Contains(expected, kv => !kv.Value.AsSpan().SequenceEqual(TrainingFixtures.Weights(left)[kv.Key]));   // the step did move the weights
        Assert.Equal(threads, torch.get_num_threads());                                                               // torch's thread count is given back
    }

    [Fact]
    public void Training_with_two_replicas_is_reproducible_and_learns_fashion_mnist()
    {
        using var train = FashionMnist.LoadTrain(limit: 1536);
        using var test = FashionMnist.LoadTest(limit: 500);
        var options = new TrainingOptions { Epochs = 2, BatchSize = 64, LearningRate = 0.05, Seed = 3, Replicas = 2, CropPaddingValue = -FashionMnist.Mean / FashionMnist.Std };

        Dictionary<string, float[]> TrainOnce(out double accuracy)
        {
            using var model = TrainingFixtures.ResNet20(TrainingFixtures.SDfp8Body(seed: 5, RoundingMode.Stochastic), initSeed: 11);
            new ImageClassifierTrainer(model, options).Fit(train);
            accuracy = ImageClassifierTrainer.Evaluate(model, test).Accuracy;
            return TrainingFixtures.Weights(model);
        }

        var first = TrainOnce(out var accuracy);
        var second = TrainOnce(out _);

        Assert.True(accuracy > 0.5, $"held-out accuracy {accuracy:P1} should be well above chance (10%)");
        foreach (var (name, values) in first)
            Assert.True(values.AsSpan().SequenceEqual(second[name]), $"{name} differs between two runs with the same seeds and replicas");
    }

    [Fact]
    public void A_replica_count_outside_1_to_64_is_rejected_by_name()
    {
        using var model = TrainingFixtures.ResNet20(QuantizationPolicy.Fp32);
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => new ImageClassifierTrainer(model, new TrainingOptions { Replicas = 0 }));
        Assert.Contains("TrainingOptions.Replicas", e.Message);
    }
}
