// Exact linear sum assignment: shortest augmenting paths with dual variables, the rectangular
// Jonker–Volgenant variant without initialisation described by D. F. Crouse, "On implementing 2D
// rectangular assignment algorithms", IEEE TAES 52(4), 2016, pp. 1685–1686 (the algorithm SciPy's
// linear_sum_assignment uses: scipy/optimize/rectangular_lsap/rectangular_lsap.cpp). Rows are added one at a time; each gets a
// Dijkstra search over reduced costs c[i,j] − u[i] − v[j], then the duals are updated and the path is
// flipped. O(rows² · cols) worst case. All buffers are allocated once, before the row loop.
using System.Runtime.CompilerServices;

namespace CloudSoup.Engine.Alignment;

public static class LinearAssignment
{
    /// <summary>
    /// Solves min (or max) Σ cost[i, col(i)] over one-to-one assignments. <paramref name="cost"/> is row-major
    /// rows×cols. Returns, for every row, its column, or −1 for rows left unassigned when rows &gt; cols.
    /// Every entry must be finite.
    /// </summary>
    public static int[] Solve(ReadOnlySpan<double> cost, int rows, int cols, bool maximize = false)
    {
        if (rows < 0 || cols < 0)
            throw new ArgumentException($"linear assignment: the matrix size {rows}×{cols} is negative");
        if (cost.Length != (long)rows * cols)
            throw new ArgumentException($"linear assignment: expected {rows}×{cols} = {(long)rows * cols} costs, got {cost.Length}");
        for (int k = 0; k < cost.Length; k++)
            if (!double.IsFinite(cost[k]))
                throw new ArgumentException($"linear assignment: cost[{k / Math.Max(cols, 1)}, {k % Math.Max(cols, 1)}] is {cost[k]}; every cost must be finite");
        if (rows == 0 || cols == 0)
            return Enumerable.Repeat(-1, rows).ToArray();

        // Work on rows ≤ cols (transpose otherwise) and always minimise (maximise = minimise the negation).
        bool transpose = rows > cols;
        int nr = transpose ? cols : rows, nc = transpose ? rows : cols;
        var c = new double[(long)nr * nc];
        double sign = maximize ? -1.0 : 1.0;
        if (!transpose)
            for (int k = 0; k < c.Length; k++) c[k] = sign * cost[k];
        else
            for (int i = 0; i < rows; i++)
                for (int j = 0; j < cols; j++)
                    c[(long)j * nc + i] = sign * cost[i * cols + j];

        var colForRow = SolveMinimise(c, nr, nc);

        var result = new int[rows];
        if (!transpose) return colForRow;
        Array.Fill(result, -1);
        for (int j = 0; j < nr; j++) result[colForRow[j]] = j;
        return result;
    }

    /// <summary>Sum of cost[i, assignment[i]] over assigned rows.</summary>
    public static double Total(ReadOnlySpan<double> cost, int cols, int[] assignment)
    {
        double sum = 0;
        for (int i = 0; i < assignment.Length; i++)
            if (assignment[i] >= 0) sum += cost[i * cols + assignment[i]];
        return sum;
    }

    private static int[] SolveMinimise(double[] c, int nr, int nc)
    {
        var u = new double[nr];
        var v = new double[nc];
        var shortest = new double[nc];
        var path = new int[nc];
        var colForRow = new int[nr];
        var rowForCol = new int[nc];
        var visitedRow = new bool[nr];
        var visitedCol = new bool[nc];
        var remaining = new int[nc];
        Array.Fill(colForRow, -1);
        Array.Fill(rowForCol, -1);

        for (int curRow = 0; curRow < nr; curRow++)
        {
            // --- Dijkstra from curRow over reduced costs until an unassigned column (the sink) is reached.
            Array.Fill(shortest, double.PositiveInfinity);
            Array.Fill(path, -1);
            Array.Clear(visitedRow);
            Array.Clear(visitedCol);
            // Filled back to front so that, with ties everywhere, row k ends up on column k.
            int numRemaining = nc;
            for (int it = 0; it < nc; it++) remaining[it] = nc - it - 1;

            double minVal = 0;
            int i = curRow, sink = -1;
            while (sink == -1)
            {
                visitedRow[i] = true;
                int index = -1;
                double lowest = double.PositiveInfinity;
                // The hot loop (O(cols) per visited row): plain refs avoid bounds checks on six arrays.
                ref double row = ref c[(long)i * nc];
                ref double vRef = ref v[0];
                ref double sp = ref shortest[0];
                ref int pathRef = ref path[0];
                ref int assigned = ref rowForCol[0];
                ref int rem = ref remaining[0];
                double ui = u[i];
                for (int it = 0; it < numRemaining; it++)
                {
                    int j = Unsafe.Add(ref rem, it);
                    double r = minVal + Unsafe.Add(ref row, j) - ui - Unsafe.Add(ref vRef, j);
                    ref double sj = ref Unsafe.Add(ref sp, j);
                    if (r < sj) { Unsafe.Add(ref pathRef, j) = i; sj = r; }
                    // Ties prefer an unassigned column: it ends the search at once (and keeps constant
                    // matrices on the identity).
                    if (sj < lowest || (sj == lowest && Unsafe.Add(ref assigned, j) == -1))
                    {
                        lowest = sj;
                        index = it;
                    }
                }
                minVal = lowest;
                if (index < 0 || double.IsPositiveInfinity(minVal))
                    throw new InvalidOperationException("linear assignment: no feasible assignment (internal error: costs are finite)");
                int jMin = remaining[index];
                if (rowForCol[jMin] == -1) sink = jMin;
                else i = rowForCol[jMin];
                visitedCol[jMin] = true;
                remaining[index] = remaining[--numRemaining];
            }

            // --- Dual update keeps reduced costs non-negative and tight along the shortest-path tree.
            u[curRow] += minVal;
            for (int r = 0; r < nr; r++)
                if (visitedRow[r] && r != curRow)
                    u[r] += minVal - shortest[colForRow[r]];
            for (int j = 0; j < nc; j++)
                if (visitedCol[j])
                    v[j] -= minVal - shortest[j];

            // --- Augment: flip the assignment along the path back to curRow.
            int col = sink;
            while (true)
            {
                int r = path[col];
                rowForCol[col] = r;
                (colForRow[r], col) = (col, colForRow[r]);
                if (r == curRow) break;
            }
        }
        return colForRow;
    }
}
