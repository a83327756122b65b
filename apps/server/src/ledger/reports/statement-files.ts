import ExcelJS from 'exceljs';
import PDFDocument from 'pdfkit';
import { formatDecimal } from '../money.ts';
import type { StatementRow, StatementTable } from './statement-table.ts';

/**
 * A statement table as an XLSX workbook or a PDF document. Amounts are written from their
 * exact decimal text: in XLSX as numbers while the text has at most 15 significant digits (so
 * the stored value is that text exactly), else as text; in PDF as text.
 */

const exactDigitsMax = 15;

function cellAmount(amount: bigint, exponent: number): number | string {
  const text = formatDecimal(amount, exponent);
  return text.replace(/[-.]/g, '').replace(/^0+/, '').length <= exactDigitsMax ? Number(text) : text;
}

function numberFormat(exponent: number): string {
  return exponent === 0 ? '#,##0;-#,##0' : `#,##0.${'0'.repeat(exponent)};-#,##0.${'0'.repeat(exponent)}`;
}

export async function statementXlsx(table: StatementTable): Promise<Buffer> {
  const workbook = new ExcelJS.Workbook();
  workbook.creator = 'Countinghouse';
  const sheet = workbook.addWorksheet(table.title.slice(0, 31));
  sheet.addRow([table.title]).font = { bold: true, size: 14 };
  sheet.addRow([table.subtitle]);
  sheet.addRow([]);
  sheet.addRow([...table.textColumns, ...table.amountColumns]).font = { bold: true };
  for (const row of table.rows) {
    const cells = [
      ...table.textColumns.map((_, index) => row.text[index] ?? ''),
      ...row.amounts.map((amount) => cellAmount(amount, row.exponent)),
    ];
    const added = sheet.addRow(cells);
    if (row.kind !== 'line') added.font = { bold: true };
    row.amounts.forEach((_, index) => {
      added.getCell(table.textColumns.length + index + 1).numFmt = numberFormat(row.exponent);
    });
  }
  sheet.getColumn(1).width = 12;
  sheet.getColumn(2).width = 40;
  for (let index = 0; index < table.amountColumns.length; index++) {
    sheet.getColumn(table.textColumns.length + index + 1).width = 18;
  }
  return Buffer.from(await workbook.xlsx.writeBuffer());
}

interface PdfLayout {
  left: number;
  top: number;
  bottom: number;
  numberWidth: number;
  nameWidth: number;
  amountWidth: number;
  rowHeight: number;
}

function pdfLayout(doc: PDFKit.PDFDocument, table: StatementTable): PdfLayout {
  const left = doc.page.margins.left;
  const usable = doc.page.width - left - doc.page.margins.right;
  const numberWidth = 50;
  const amountWidth = Math.min(90, (usable - numberWidth - 140) / table.amountColumns.length);
  return {
    left,
    top: doc.page.margins.top,
    bottom: doc.page.height - doc.page.margins.bottom,
    numberWidth,
    nameWidth: usable - numberWidth - amountWidth * table.amountColumns.length,
    amountWidth,
    rowHeight: 12,
  };
}

function pdfRow(doc: PDFKit.PDFDocument, layout: PdfLayout, y: number, text: string[], amounts: string[]): void {
  doc.text(text[0] ?? '', layout.left, y, { width: layout.numberWidth, lineBreak: false });
  doc.text(text[1] ?? '', layout.left + layout.numberWidth, y, {
    width: layout.nameWidth - 6,
    lineBreak: false,
    ellipsis: true,
  });
  amounts.forEach((amount, index) => {
    const x = layout.left + layout.numberWidth + layout.nameWidth + index * layout.amountWidth;
    doc.text(amount, x, y, { width: layout.amountWidth - 4, align: 'right', lineBreak: false });
  });
}

function pdfHeader(doc: PDFKit.PDFDocument, layout: PdfLayout, table: StatementTable): number {
  doc.font('Helvetica-Bold').fontSize(7);
  pdfRow(doc, layout, layout.top, table.textColumns, table.amountColumns);
  doc.font('Helvetica');
  return layout.top + layout.rowHeight * 1.5;
}

function rowText(row: StatementRow): string[] {
  return row.amounts.map((amount) => formatDecimal(amount, row.exponent));
}

/** Uncompressed, so the figures can be read back from the file by a plain text parser. */
export async function statementPdf(table: StatementTable): Promise<Buffer> {
  const landscape = table.amountColumns.length > 4;
  const doc = new PDFDocument({
    size: 'LETTER',
    layout: landscape ? 'landscape' : 'portrait',
    compress: false,
    margin: 40,
  });
  doc.info.Title = `${table.title} ${table.subtitle}`;
  doc.info.Creator = 'Countinghouse';
  const chunks: Buffer[] = [];
  doc.on('data', (chunk: Buffer) => chunks.push(chunk));
  const finished = new Promise<void>((resolve) => doc.on('end', resolve));
  const layout = pdfLayout(doc, table);
  doc.font('Helvetica-Bold').fontSize(14).text(table.title, layout.left, layout.top);
  doc.font('Helvetica').fontSize(8).text(table.subtitle);
  let y = pdfHeader(doc, { ...layout, top: doc.y + 8 }, table);
  for (const row of table.rows) {
    if (y + layout.rowHeight > layout.bottom) {
      doc.addPage();
      y = pdfHeader(doc, layout, table);
    }
    doc.font(row.kind === 'line' ? 'Helvetica' : 'Helvetica-Bold').fontSize(7);
    pdfRow(doc, layout, y, row.text, rowText(row));
    y += layout.rowHeight;
  }
  doc.end();
  await finished;
  return Buffer.concat(chunks);
}
