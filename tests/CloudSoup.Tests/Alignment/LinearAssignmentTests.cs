using CloudSoup.Engine.Alignment;

namespace CloudSoup.Tests.Alignment;

public class LinearAssignmentTests
{
    // Best total over every injective map from the smaller side to the larger, by exhaustive search.
    private static double BruteForce(double[] cost, int rows, int cols, bool maximize)
    {
        bool transpose = rows > cols;
        int nr = Math.Min(rows, cols), nc = Math.Max(rows, cols);
        double At(int i, int j) => transpose ? cost[j * cols + i] : cost[i * cols + j];
        double best = maximize ? double.NegativeInfinity : double.PositiveInfinity;
        var used = new bool[nc];
        void Recurse(int i, double sum)
        {
            if (i == nr)
            {
                best = maximize ? Math.Max(best, sum) : Math.Min(best, sum);
                return;
            }
            for (int j = 0; j < nc; j++)
            {
                if (used[j]) continue;
                used[j] = true;
                Recurse(i + 1, sum + At(i, j));
                used[j] = false;
            }
        }
        Recurse(0, 0);
        return best;
    }

    private static void AssertValid(int[] assignment, int rows, int cols)
    {
        Assert.Equal(rows, assignment.Length);
        var assigned = assignment.Where(c => c >= 0).ToArray();
        Assert.Equal(Math.Min(rows, cols), assigned.Length);
        Assert.Equal(assigned.Length, assigned.Distinct().Count());
        Assert.All(assigned, c => Assert.InRange(c, 0, cols - 1));
    }

    [Fact]
    public void Matches_brute_force_on_random_small_matrices()
    {
        int checkedCount = 0;
        for (int seed = 0; seed < 400; seed++)
        {
            var rng = new Random(seed);
            int rows = rng.Next(1, 8), cols = rng.Next(1, 8);
            // Even seeds: small integers, so ties are everywhere; odd seeds: continuous values of both signs.
            var cost = Enumerable.Range(0, rows * cols)
                .Select(_ => seed % 2 == 0 ? rng.Next(0, 4) : (rng.NextDouble() - 0.5) * 100).ToArray();
            foreach (bool maximize in new[] { false, true })
            {
                var assignment = LinearAssignment.Solve(cost, rows, cols, maximize);
                AssertValid(assignment, rows, cols);
                Assert.Equal(BruteForce(cost, rows, cols, maximize), LinearAssignment.Total(cost, cols, assignment), 9);
                checkedCount++;
            }
        }
        Assert.Equal(800, checkedCount);
    }

    [Fact]
    public void All_ties_give_the_identity()
    {
        var cost = Enumerable.Repeat(3.5, 25).ToArray();
        Assert.Equal(new[] { 0, 1, 2, 3, 4 }, LinearAssignment.Solve(cost, 5, 5));
        Assert.Equal(new[] { 0, 1, 2, 3, 4 }, LinearAssignment.Solve(new double[25], 5, 5, maximize: true));
    }

    [Fact]
    public void Equal_rows_are_each_assigned_a_distinct_best_column()
    {
        // Every row is [5, 1, 9]: minimising must use columns 1, 0 (cost 1 + 5), maximising 2, 0.
        var cost = new double[] { 5, 1, 9, 5, 1, 9 };
        var min = LinearAssignment.Solve(cost, 2, 3);
        Assert.Equal(6, LinearAssignment.Total(cost, 3, min));
        var max = LinearAssignment.Solve(cost, 2, 3, maximize: true);
        Assert.Equal(14, LinearAssignment.Total(cost, 3, max));
    }

    [Fact]
    public void Rectangular_both_ways()
    {
        // 2×4: rows pick their cheapest distinct columns.
        var wide = new double[] { 4, 1, 3, 9, 2, 0, 5, 1 };
        var a = LinearAssignment.Solve(wide, 2, 4);
        Assert.Equal(2, LinearAssignment.Total(wide, 4, a));   // 1 + 1 (row 0 → col 1, row 1 → col 3)
        Assert.Equal(new[] { 1, 3 }, a);

        // 4×2 (the transpose): the same two pairs, the other two rows unassigned.
        var tall = new double[8];
        for (int i = 0; i < 2; i++) for (int j = 0; j < 4; j++) tall[j * 2 + i] = wide[i * 4 + j];
        var b = LinearAssignment.Solve(tall, 4, 2);
        Assert.Equal(new[] { -1, 0, -1, 1 }, b);
    }

    [Fact]
    public void Maximise_recovers_a_hidden_permutation()
    {
        var rng = new Random(7);
        int n = 50;
        var perm = Enumerable.Range(0, n).OrderBy(_ => rng.Next()).ToArray();
        var cost = new double[n * n];
        for (int i = 0; i < n; i++)
            for (int j = 0; j < n; j++)
                cost[i * n + j] = rng.NextDouble() + (perm[i] == j ? 10 : 0);
        Assert.Equal(perm, LinearAssignment.Solve(cost, n, n, maximize: true));
    }

    [Fact]
    public void Empty_and_single_element()
    {
        Assert.Empty(LinearAssignment.Solve([], 0, 0));
        Assert.Equal(new[] { -1, -1 }, LinearAssignment.Solve([], 2, 0));
        Assert.Equal(new[] { 0 }, LinearAssignment.Solve([42.0], 1, 1));
    }

    [Theory]
    [InlineData(double.NaN)]
    [InlineData(double.PositiveInfinity)]
    [InlineData(double.NegativeInfinity)]
    public void Non_finite_costs_are_rejected(double bad)
    {
        var cost = new double[] { 1, 2, 3, bad };
        var e = Assert.Throws<ArgumentException>(() => LinearAssignment.Solve(cost, 2, 2));
        Assert.Contains("cost[1, 1]", e.Message);
        Assert.Contains("finite", e.Message);
    }

    [Fact]
    public void Wrong_length_is_rejected()
    {
        var e = Assert.Throws<ArgumentException>(() => LinearAssignment.Solve(new double[5], 2, 3));
        Assert.Contains("2×3", e.Message);
    }
}
